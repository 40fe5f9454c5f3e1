"""The three roles (Django groups) and the checks every page and endpoint uses.

Maintainers can do everything reviewers can; reviewers and maintainers do not receive
annotation work unless they are also in the annotator group.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
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
    """DRF token authentication that reads the user and the user's group names in one statement.

    Every API request checks a role right after authenticating; the plain TokenAuthentication
    costs one query for the token and user, and the role check a second one for the groups.
    Here one prepared statement (infra.sql) returns the token, the user's columns and, on
    PostgreSQL, their group names as an array; elsewhere the groups are read with the user's
    row in a second statement. Building the equivalent annotated queryset on every request
    cost more CPU than the database needed to answer it (the annotation queue's profile).
    """

    def authenticate_credentials(self, key):
        from django.db import connection

        from infra import sql

        model = self.get_model()
        user_model = model._meta.get_field("user").related_model
        fields = user_model._meta.concrete_fields
        token_sql, groups_sql = _token_sql(model, user_model, connection.vendor)
        row = sql.one(token_sql, [key])
        if row is None:
            raise AuthenticationFailed("Invalid token.")
        n = len(fields)
        user = sql.loaded_row(user_model, row[:n])
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        token = sql.loaded(model, key=key, user_id=user.pk, created=row[n])
        token.user = user  # the cached relation: DRF and our views read token.user
        if connection.vendor == "postgresql":
            names = row[n + 1]
        else:
            names = [r[0] for r in sql.all_rows(groups_sql, [user.pk])]
        user._platform_roles = roles_from_groups(names, is_superuser=user.is_superuser)
        return (user, token)


@lru_cache(maxsize=4)
def _token_sql(token_model, user_model, vendor: str) -> tuple[str, str]:
    """(the token + user statement, the groups statement), written once per process."""
    from django.db import connection

    q = connection.ops.quote_name
    through = user_model.groups.through._meta
    group_table = user_model.groups.field.related_model._meta.db_table
    groups_of = (
        f"SELECT g.name FROM {q(through.db_table)} ug JOIN {q(group_table)} g ON g.id = ug.group_id WHERE ug.user_id = "
    )
    cols = ", ".join(f"u.{q(f.column)}" for f in user_model._meta.concrete_fields)
    array = f", ARRAY({groups_of}u.id)" if vendor == "postgresql" else ""
    token_sql = (
        f"SELECT {cols}, t.created{array} FROM {q(token_model._meta.db_table)} t"
        f" JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = t.user_id WHERE t.key = %s"
    )
    return token_sql, groups_of + "%s"
