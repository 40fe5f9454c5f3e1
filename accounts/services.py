from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from infra.errors import DomainError, Forbidden, NotFound
from infra.roles import Role, has_role

ROLE_NAMES = tuple(r.value for r in Role)


@transaction.atomic
def user_roles_set(*, actor, user_id: int, roles: set[str] | list[str]) -> set[str]:
    """Make the user's role groups exactly `roles`; the only account change a maintainer makes.

    Touches group membership of the three role groups and nothing else (not is_staff,
    is_superuser, permissions or other groups). Superusers are left alone (they hold every role
    anyway and are managed in the admin), and a maintainer cannot drop its own maintainer role
    (the page would lock it out mid-edit; another maintainer or a superuser can).
    """
    if not has_role(actor, Role.MAINTAINER):
        raise Forbidden("Only maintainers manage roles.")
    wanted = set(roles)
    unknown = wanted - set(ROLE_NAMES)
    if unknown:
        raise DomainError(f"Unknown role(s): {', '.join(sorted(unknown))}.", field="roles")
    user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    if user.is_superuser:
        raise Forbidden("A superuser's account is managed in the admin.")
    if user.pk == actor.pk and Role.MAINTAINER not in wanted:
        raise DomainError("You cannot remove your own maintainer role.", field="roles")
    groups = {g.name: g for g in Group.objects.filter(name__in=ROLE_NAMES)}
    for name in ROLE_NAMES:
        if name not in groups:
            groups[name] = Group.objects.create(name=name)
    user.groups.remove(*[groups[n] for n in ROLE_NAMES if n not in wanted])
    user.groups.add(*[groups[n] for n in ROLE_NAMES if n in wanted])
    return wanted
