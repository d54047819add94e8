"""What the evaluation commands share: resolving version references and the user to record."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from retrieval import selectors as retrieval_selectors
from retrieval.models import ModelVersion


def version_from_ref(ref: str) -> ModelVersion:
    try:
        return retrieval_selectors.model_version_get(ref=ref)
    except ModelVersion.DoesNotExist:
        raise CommandError(f"Unknown model version: {ref!r} (base, champion, a number such as v3, or id:12).") from None


def user_from_name(username: str | None):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"Unknown user: {username!r}.")
    return user


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"
