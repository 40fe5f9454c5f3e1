"""The three roles (Django groups) and the checks every page and endpoint uses.

Maintainers can do everything reviewers can; reviewers and maintainers do not receive
annotation work unless they are also in the annotator group.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from rest_framework.permissions import BasePermission


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "annotator"
    REVIEWER = "reviewer", "reviewer"
    MAINTAINER = "maintainer", "maintainer"


# A role grants its own pages plus those of the roles listed here.
_IMPLIED: dict[str, set[str]] = {
    Role.ANNOTATOR: {Role.ANNOTATOR},
    Role.REVIEWER: {Role.REVIEWER},
    Role.MAINTAINER: {Role.MAINTAINER, Role.REVIEWER},
}


def user_roles(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_platform_roles", None)
    if cached is None:
        groups = set(user.groups.values_list("name", flat=True))
        cached = set()
        for name in groups:
            cached |= _IMPLIED.get(name, set())
        if user.is_superuser:
            cached = {r.value for r in Role}
        user._platform_roles = cached
    return cached


def has_role(user: Any, *roles: str) -> bool:
    """True when the user holds any of `roles` (directly or implied)."""
    return bool(user_roles(user) & set(roles))


def role_required(*roles: str) -> Callable:
    """View decorator: anonymous users go to the login page, others without the role get 403."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied("Your account does not have the role this page needs.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class HasRole(BasePermission):
    """DRF permission: set `required_roles = (Role.X, ...)` on the view."""

    message = "Your account does not have the role this endpoint needs."

    def has_permission(self, request, view) -> bool:
        roles = getattr(view, "required_roles", ())
        return bool(request.user and request.user.is_authenticated and has_role(request.user, *roles))


def role_permission(*roles: str) -> type[BasePermission]:
    """A DRF permission class for the given roles: `permission_classes = [role_permission(Role.REVIEWER)]`."""

    class _Perm(HasRole):
        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and has_role(request.user, *roles))

    _Perm.__name__ = "Has" + "Or".join(r.title() for r in roles)
    return _Perm
