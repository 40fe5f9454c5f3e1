"""Sign-in throttling: after LOGIN_FAILURE_LIMIT wrong passwords for one user name from one
client address within LOGIN_LOCKOUT_MINUTES, that pair is refused for LOGIN_LOCKOUT_MINUTES
after its last failure, even with the right password.

Per user name *and* address (as django-axes does by default): a per-name lock alone would let
anyone lock a colleague out; a per-address lock alone lets an attacker rotate names. We keep
this small module rather than adding django-axes: we need one counter checked in one
authentication backend, while axes brings its own middleware, backend, models, admin and a
dozen settings to keep in step with ours.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import LoginFailure


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the header a trusted proxy sets (LOGIN_CLIENT_IP_HEADER)."""
    if request is None:
        return "-"
    header = getattr(settings, "LOGIN_CLIENT_IP_HEADER", "")
    if header and request.META.get(header):
        # X-Forwarded-For may list several hops; the proxy appends the client it saw last.
        return request.META[header].split(",")[-1].strip()[:64]
    return (request.META.get("REMOTE_ADDR") or "-")[:64]


def _key(username: str | None) -> str:
    return (username or "").strip().lower()[:150]


def _window() -> timedelta:
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def locked_until(username: str | None, request) -> timezone.datetime | None:
    """When the lock on this name and address ends, or None when sign-in is open."""
    row = LoginFailure.objects.filter(username=_key(username), address=client_address(request)).first()
    if row is None or row.failures < settings.LOGIN_FAILURE_LIMIT:
        return None
    until = row.last_failure_at + _window()
    return until if until > timezone.now() else None


def failure_record(username: str | None, request) -> None:
    """Count one failed sign-in; failures older than the window start the count again."""
    now = timezone.now()
    with transaction.atomic():
        row, created = LoginFailure.objects.select_for_update().get_or_create(
            username=_key(username), address=client_address(request), defaults={"failures": 1, "last_failure_at": now}
        )
        if created:
            return
        row.failures = 1 if row.last_failure_at + _window() <= now else row.failures + 1
        row.last_failure_at = now
        row.save(update_fields=["failures", "last_failure_at"])


def failures_clear(username: str | None, request) -> None:
    LoginFailure.objects.filter(username=_key(username), address=client_address(request)).delete()
