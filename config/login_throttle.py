"""Brute-force protection for every sign-in: the login form, ``/api/auth/token/`` and the admin.

Failures are counted per username + client address and per client address, in Django's cache, over a window
that starts at the first failure. Past a limit, sign-ins from that address (for that username, or for any) are
refused until the window ends, even with the right password: the API answers 429 with a reason, the login page
says so. A successful sign-in clears the username + address counter.

It works as the first authentication backend (it refuses, never accepts) and as receivers of Django's
``user_login_failed`` / ``user_logged_in`` signals, so that every caller of ``authenticate()`` that passes the
request is covered.
"""
from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

# Set on the request when a sign-in was refused because of the limit (the views turn it into 429).
LOCKED_OUT_ATTRIBUTE = "lexique_login_locked_out"


def _now() -> float:
    return time.time()


def client_address(request) -> str:
    header = getattr(settings, "LOGIN_CLIENT_IP_HEADER", "")
    if header:
        forwarded = request.META.get(header, "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(*, username: str, address: str) -> dict[str, tuple[str, int]]:
    pair = hashlib.sha256(f"{username.strip().lower()}\x00{address}".encode()).hexdigest()[:32]
    return {
        "username+address": (f"login-failures:pair:{pair}", settings.LOGIN_FAILURE_LIMIT),
        "address": (f"login-failures:address:{hashlib.sha256(address.encode()).hexdigest()[:32]}", settings.LOGIN_ADDRESS_FAILURE_LIMIT),
    }


def seconds_locked(*, username: str, address: str) -> int:
    """Seconds until sign-ins of ``username`` from ``address`` are accepted again (0: not locked)."""
    now, locked = _now(), 0
    for key, limit in _keys(username=username, address=address).values():
        window = cache.get(key)
        if window and window["count"] >= limit and window["until"] > now:
            locked = max(locked, int(window["until"] - now) + 1)
    return locked


def record_failure(*, username: str, address: str) -> None:
    now, length = _now(), settings.LOGIN_LOCKOUT_SECONDS
    for key, _limit in _keys(username=username, address=address).values():
        window = cache.get(key)
        if not window or window["until"] <= now:
            window = {"count": 0, "until": now + length}
        window["count"] += 1
        cache.set(key, window, timeout=max(1, int(window["until"] - now) + 1))


def record_success(*, username: str, address: str) -> None:
    cache.delete(_keys(username=username, address=address)["username+address"][0])


def is_locked_out(request) -> bool:
    return bool(getattr(request, LOCKED_OUT_ATTRIBUTE, False))


class LoginThrottleBackend:
    """First in AUTHENTICATION_BACKENDS: refuses a locked-out sign-in before the password is even checked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or not settings.LOGIN_THROTTLE_ENABLED:
            return None
        seconds = seconds_locked(username=username or "", address=client_address(request))
        if seconds:
            setattr(request, LOCKED_OUT_ATTRIBUTE, seconds)
            raise PermissionDenied("Too many failed sign-ins")  # stops authenticate(): no later backend is asked
        return None

    def get_user(self, user_id):
        # Test clients' force_login() name the first backend; sessions they open must still find their user.
        return ModelBackend().get_user(user_id)


@receiver(user_login_failed, dispatch_uid="lexique-login-throttle-failed")
def _count_failure(sender, credentials, request=None, **kwargs):
    if request is None or not settings.LOGIN_THROTTLE_ENABLED or is_locked_out(request):
        return
    record_failure(username=credentials.get("username") or "", address=client_address(request))


@receiver(user_logged_in, dispatch_uid="lexique-login-throttle-success")
def _clear_on_success(sender, request=None, user=None, **kwargs):
    if request is None or user is None:
        return
    record_success(username=user.get_username(), address=client_address(request))
