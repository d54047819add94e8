"""The few kinds of refusal a service raises: invalid, forbidden, not found, conflict, too large, unavailable.

The kind (the class) says what went wrong, for any caller; the API turns each kind into one HTTP status and a
JSON body with a ``reason`` and a ``code``, in one place (``config.api.json_exception_handler``). Pages and
commands show the message. They are Django ``ValidationError``\\ s, so a form or a view that shows a service's
refusal keeps doing so, and a plain ``ValidationError`` of a service is taken as ``Invalid``.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError


class ServiceError(ValidationError):
    """A refusal: a message for people (a sentence, a list, or field -> messages), a stable machine ``code``,
    and ``extra`` fields for the API's answer (e.g. the id of the run that is already going)."""

    default_code = "invalid"

    def __init__(self, message, code: str | None = None, params: dict | None = None, **extra):
        super().__init__(message, code=code or self.default_code, params=params)
        self.code = code or self.default_code  # also when the message is a dict of field errors
        self.extra = extra

    def __str__(self) -> str:
        return " ".join(self.messages)


class Invalid(ServiceError):
    """The request itself is wrong (a field, a file, an option)."""

    default_code = "invalid"


class Forbidden(ServiceError):
    """This user may not do this (beyond the role checks of the views)."""

    default_code = "permission_denied"


class NotFound(ServiceError):
    default_code = "not_found"


class Conflict(ServiceError):
    """The request is fine but the current state refuses it: a duplicate, a stale edit, already done or running."""

    default_code = "conflict"


class TooLarge(ServiceError):
    default_code = "too_large"


class Unavailable(ServiceError):
    """A part the request needs is down (a search index, a model, the broker): try again later."""

    default_code = "unavailable"


@contextmanager
def refusals_as(kind: type[ServiceError], *, code: str, of: tuple[type[Exception], ...] = (ValidationError,)) -> Iterator[None]:
    """For a service that still raises untyped errors: those of ``of`` are refusals of ``kind`` with ``code``.
    Typed refusals pass through as they are."""
    try:
        yield
    except ServiceError:
        raise
    except of as error:
        if isinstance(error, ValidationError):
            message = error.message_dict if hasattr(error, "error_dict") else error.messages
        else:
            message = str(error)
        raise kind(message, code=code) from error
