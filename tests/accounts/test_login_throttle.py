"""Finding 8: sign-in is throttled per user name and client address."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import LoginFailure

pytestmark = pytest.mark.embedded


def _login(username: str, password: str, addr: str = "10.0.0.1", url: str = "/accounts/login/"):
    return Client(REMOTE_ADDR=addr).post(url, {"username": username, "password": password})


def test_right_password_is_refused_after_too_many_wrong_ones(annotator, settings):
    settings.LOGIN_FAILURE_LIMIT = 5
    for _ in range(5):
        assert _login("ann", "wrong").status_code == 200
    r = _login("ann", "pw-ann")
    assert r.status_code == 429 and b"Too many failed sign-ins" in r.content
    assert "_auth_user_id" not in r.client.session


def test_the_admin_login_is_throttled_too(annotator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        _login("ann", "wrong", url="/admin/login/")
    r = _login("ann", "pw-ann")
    assert r.status_code == 429


def test_a_lock_is_per_address(annotator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        _login("ann", "wrong", addr="10.0.0.66")
    r = _login("ann", "pw-ann", addr="10.0.0.7")
    assert r.status_code == 302  # the colleague on another machine still signs in


def test_success_clears_the_count(annotator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    _login("ann", "wrong")
    _login("ann", "wrong")
    assert _login("ann", "pw-ann").status_code == 302
    assert not LoginFailure.objects.exists()
    _login("ann", "wrong")
    _login("ann", "wrong")
    assert _login("ann", "pw-ann").status_code == 302


def test_the_lock_ends_after_the_lockout(annotator, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.LOGIN_FAILURE_LIMIT = 2
    _login("ann", "wrong")
    _login("ann", "wrong")
    assert _login("ann", "pw-ann").status_code == 429
    LoginFailure.objects.update(last_failure_at=timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES + 1))
    assert _login("ann", "pw-ann").status_code == 302
