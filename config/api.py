"""API-wide helpers: every error is JSON with a reason; the one mapping from a refusal to its HTTP status."""
from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, routers, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config import errors

# Each kind of refusal of a service (config.errors) answers one status; a plain ValidationError is Invalid.
# The largest integer the databases store (a 64-bit id): a query parameter beyond it is refused with a 400, not
# passed to the database driver, which raises OverflowError (a 500) on SQLite and PostgreSQL.
ID_MAX = 2**63 - 1
# A PositiveIntegerField's largest value on every database Django supports.
POSITIVE_INT_MAX = 2**31 - 1

HTTP_STATUS = {
    errors.Invalid: status.HTTP_400_BAD_REQUEST,
    errors.Forbidden: status.HTTP_403_FORBIDDEN,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.TooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    errors.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def json_exception_handler(exc, context):
    """DRF's handler, with every error as ``{"reason": a sentence, "code": a stable code}`` plus ``errors``
    (field -> messages) when the request was invalid, and a service's refusals mapped by their kind."""
    if isinstance(exc, DjangoValidationError):
        return refusal_response(exc)
    if isinstance(exc, ObjectDoesNotExist):  # a row named by the request is missing: not a server error
        exc = exceptions.NotFound()
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


def refusal_response(error: DjangoValidationError) -> Response:
    http_status = next((HTTP_STATUS[kind] for kind in type(error).__mro__ if kind in HTTP_STATUS), status.HTTP_400_BAD_REQUEST)
    field_errors = error.message_dict if hasattr(error, "error_dict") else None
    if isinstance(error, errors.ServiceError):
        code, extra = error.code, error.extra
    else:  # a plain ValidationError: its own code when it is one coded message
        single = getattr(error, "error_list", [])
        code, extra = (single[0].code if len(single) == 1 and single[0].code else "invalid"), {}
    details = field_errors or {"non_field_errors": error.messages}
    body = {"reason": _first_message(details) or "Invalid request.", "code": code, **extra}
    if field_errors or http_status == status.HTTP_400_BAD_REQUEST:
        body["errors"] = details
    return Response(body, status=http_status)


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
