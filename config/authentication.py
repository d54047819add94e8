"""API token authentication that reads a token's user at most every API_TOKEN_CACHE_SECONDS per process.

DRF's TokenAuthentication reads the token and its user on every request: on a warm search that query cost as much
as the BM25 ranking. This one remembers, per process, which active user a token key belongs to, for
API_TOKEN_CACHE_SECONDS (1 by default, as the index revision; 0 reads it on every request). Revoking a token
(deleting it, or its user) and saving a user (deactivating it) forget that user's tokens at once in the process
that did it; the other processes refuse the token within API_TOKEN_CACHE_SECONDS. Unknown tokens and inactive users
are never remembered: they are refused with DRF's own messages, read from the database every time.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authentication import TokenAuthentication

from config.recent import RecentReads

if TYPE_CHECKING:
    from rest_framework.authtoken.models import Token

# Token keys remembered per process (the least recently used go first): key -> (user, token).
CACHE_SIZE = 1024
_tokens: RecentReads[tuple[object, "Token"]] = RecentReads(CACHE_SIZE)


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with the key's user remembered for API_TOKEN_CACHE_SECONDS."""

    def authenticate_credentials(self, key):
        seconds = getattr(settings, "API_TOKEN_CACHE_SECONDS", 1.0)
        read = super().authenticate_credentials  # raises for an unknown key or an inactive user: never remembered
        if seconds <= 0:
            return read(key)
        user, token = _tokens.get(key, seconds=seconds, read=lambda: read(key))
        # Copies: what a request sets on its user or token never reaches the next request.
        return copy.copy(user), copy.copy(token)


def forget_tokens(*, user_id: int | None = None) -> None:
    """Forget the remembered tokens of ``user_id`` (every token when None)."""
    _tokens.forget(None if user_id is None else (lambda remembered: remembered[0].pk == user_id))


def _forget_now_and_after_commit(user_id: int | None) -> None:
    # Now for this thread's next request, and after the commit for a request that read the token meanwhile.
    forget_tokens(user_id=user_id)
    transaction.on_commit(lambda: forget_tokens(user_id=user_id))


# Senders by name: DRF imports this module with its settings, possibly before the models are ready.
@receiver(post_delete, sender="authtoken.Token", dispatch_uid="config-token-revoked")
@receiver(post_save, sender="authtoken.Token", dispatch_uid="config-token-saved")
def _token_changed(sender, instance: "Token", **kwargs) -> None:
    _forget_now_and_after_commit(instance.user_id)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="config-token-user-deleted")
@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="config-token-user-saved")
def _user_changed(sender, instance, **kwargs) -> None:
    _forget_now_and_after_commit(instance.pk)
