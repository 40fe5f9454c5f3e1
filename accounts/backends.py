"""The model backend behind the sign-in throttle (accounts.throttle).

It sits in the authentication backend, not the login view, so that every form that calls
`authenticate(request, ...)` — our login page and the admin's — is throttled the same way.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts import throttle


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get("username")
        if throttle.locked_until(username, request) is not None:
            # PermissionDenied stops authenticate() from trying other backends: locked means
            # refused even with the right password.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttle.failure_record(username, request)
        else:
            throttle.failures_clear(username, request)
        return user
