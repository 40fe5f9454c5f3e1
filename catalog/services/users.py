"""The demo accounts."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from infra.roles import Role

# Demo accounts (cross-app contract): password "demo-<username>"; the maintainer is also a reviewer.
DEMO_USERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("annotator", (Role.ANNOTATOR,)),
    ("annotator2", (Role.ANNOTATOR,)),
    ("annotator3", (Role.ANNOTATOR,)),
    ("reviewer", (Role.REVIEWER,)),
    ("maintainer", (Role.MAINTAINER, Role.REVIEWER)),
)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    username: str
    password: str
    roles: tuple[str, ...]
    created: bool


@transaction.atomic
def demo_users_ensure() -> list[DemoAccount]:
    """Create the demo accounts that are missing; existing ones keep their password.

    The maintainer is staff with the stages' model permissions so that it can use the Django admin
    (not a superuser: a superuser holds every role, annotator included).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    user_model = get_user_model()
    accounts = []
    for username, roles in DEMO_USERS:
        password = f"demo-{username}"
        user = user_model.objects.filter(username=username).first()
        created = user is None
        if created:
            user = user_model.objects.create_user(username=username, password=password)
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)  # no-op when already a member
        if Role.MAINTAINER in roles and created:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            # Not the account models' permissions (users, groups, permissions, tokens, sessions):
            # those pages are superuser-only anyway (accounts/admin.py); roles change on our page.
            user.user_permissions.set(
                Permission.objects.exclude(content_type__app_label__in=("auth", "authtoken", "sessions", "accounts"))
            )
        accounts.append(DemoAccount(username, password, roles, created))
    return accounts
