"""Roles are Django groups: expert (curate, flag), maintainer (also retrain, promote), admin."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from rest_framework.permissions import SAFE_METHODS, BasePermission

EXPERT = "expert"
MAINTAINER = "maintainer"
ADMIN = "admin"
ROLES = (EXPERT, MAINTAINER, ADMIN)
# Not a rank: an expert in this group also settles disagreements between experts (adjudication).
SENIOR_EXPERT = "senior_expert"
# A role includes the ones before it.
_RANK = {EXPERT: 1, MAINTAINER: 2, ADMIN: 3}


def user_rank(user: AbstractBaseUser | AnonymousUser | None) -> int:
    if user is None or not user.is_authenticated:
        return 0
    if user.is_superuser:
        return _RANK[ADMIN]
    cached = getattr(user, "_lexique_rank", None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    rank = max((_RANK[name] for name in names if name in _RANK), default=0)
    user._lexique_rank = rank
    return rank


def has_role(user, role: str) -> bool:
    return user_rank(user) >= _RANK[role]


def can_adjudicate(user) -> bool:
    """Maintainers, and experts of the ``senior_expert`` group, settle disagreements between experts."""
    if has_role(user, MAINTAINER):
        return True
    if not has_role(user, EXPERT):
        return False
    cached = getattr(user, "_lexique_senior", None)
    if cached is None:
        cached = user._lexique_senior = user.groups.filter(name=SENIOR_EXPERT).exists()
    return cached


def ensure_role_groups() -> None:
    for role in (*ROLES, SENIOR_EXPERT):
        Group.objects.get_or_create(name=role)


def assign_role(user, role: str) -> None:
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    user.__dict__.pop("_lexique_rank", None)


def roles_context(request) -> dict:
    user = getattr(request, "user", None)
    return {
        "is_expert": has_role(user, EXPERT),
        "is_maintainer": has_role(user, MAINTAINER),
        "is_admin": has_role(user, ADMIN),
        "can_adjudicate": bool(user) and can_adjudicate(user),
    }


class _RolePermission(BasePermission):
    role = EXPERT
    message = "This action needs the {role} role."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        if has_role(request.user, self.role):
            return True
        self.message = f"This action needs the {self.role} role."
        return False


class IsExpertOrReadOnly(_RolePermission):
    role = EXPERT


class IsMaintainerOrReadOnly(_RolePermission):
    role = MAINTAINER


class IsMaintainer(BasePermission):
    message = "This action needs the maintainer role."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, MAINTAINER)


def role_required(role: str):
    """View decorator: 403 for a logged-in user without ``role`` (anonymous users are sent to login)."""
    from functools import wraps

    from django.core.exceptions import PermissionDenied

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
