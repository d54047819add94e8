"""API-wide helpers: every error is JSON with a reason."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, routers, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler


def json_exception_handler(exc, context):
    """Wrap DRF's handler so errors always carry ``reason`` (a sentence) and ``errors`` (details)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=getattr(exc, "message_dict", None) or exc.messages)
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        body = {"reason": str(data["detail"]), "code": getattr(data["detail"], "code", "error")}
    else:
        body = {"reason": _first_message(data) or "Invalid request.", "code": "invalid", "errors": data}
    response.data = body
    return response


def _first_message(data) -> str:
    if isinstance(data, dict):
        for key, value in data.items():
            message = _first_message(value)
            if message:
                return message if key in ("non_field_errors", "detail") else f"{key}: {message}"
    elif isinstance(data, list):
        for value in data:
            message = _first_message(value)
            if message:
                return message
    elif data:
        return str(data)
    return ""


def error_response(reason: str, *, status: int, code: str = "error", **extra) -> Response:
    return Response({"reason": reason, "code": code, **extra}, status=status)


class ErrorSerializer(serializers.Serializer):
    """The body of every API error, for the OpenAPI schema (``responses={400: ErrorSerializer}``)."""

    reason = serializers.CharField(help_text="A sentence for people.")
    code = serializers.CharField(help_text="A stable machine code: invalid, not_authenticated, permission_denied, duplicate, stale...")
    errors = serializers.JSONField(required=False, help_text="Field errors, when the request was invalid.")


class OptionalSlashRouter(routers.SimpleRouter):
    """Routes answer with or without the trailing slash (``POST /api/training-runs`` as documented)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
