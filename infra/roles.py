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
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "annotator"
    REVIEWER = "reviewer", "reviewer"
    MAINTAINER = "maintainer", "maintainer"
    RESEARCHER = "researcher", "researcher"  # evaluates models against published releases


# A role grants its own pages plus those of the roles listed here.
_IMPLIED: dict[str, set[str]] = {
    Role.ANNOTATOR: {Role.ANNOTATOR},
    Role.REVIEWER: {Role.REVIEWER},
    Role.MAINTAINER: {Role.MAINTAINER, Role.REVIEWER, Role.RESEARCHER},
    Role.RESEARCHER: {Role.RESEARCHER},
}


def roles_from_groups(group_names: Any, *, is_superuser: bool) -> set[str]:
    """The roles that these group names grant (superusers hold every role)."""
    if is_superuser:
        return {r.value for r in Role}
    roles: set[str] = set()
    for name in group_names or ():
        roles |= _IMPLIED.get(name, set())
    return roles


def user_roles(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_platform_roles", None)
    if cached is None:
        cached = roles_from_groups(user.groups.values_list("name", flat=True), is_superuser=user.is_superuser)
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


class RoleTokenAuthentication(TokenAuthentication):
    """DRF token authentication that reads the user's group names in the same query.

    Every API request checks a role right after authenticating; the plain TokenAuthentication
    costs one query for the token and user, and the role check a second one for the groups.
    On PostgreSQL the group names come back as an array column of the token query (one query
    instead of two on the hot annotation endpoints); elsewhere it behaves like the parent.
    """

    def authenticate_credentials(self, key):
        from django.db import connection

        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
        from django.contrib.auth.models import Group
        from django.contrib.postgres.expressions import ArraySubquery
        from django.db.models import OuterRef

        model = self.get_model()
        names = Group.objects.filter(user=OuterRef("user_id")).values("name")
        token = model.objects.select_related("user").annotate(_group_names=ArraySubquery(names)).filter(key=key).first()
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        user = token.user
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        user._platform_roles = roles_from_groups(token._group_names, is_superuser=user.is_superuser)
        return (user, token)
