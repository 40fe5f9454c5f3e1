"""Finding 1: a staff maintainer with every model permission cannot edit users, groups,
permissions or tokens in the Django admin (it could make itself superuser or read tokens)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from tests.conftest import client_for

pytestmark = pytest.mark.embedded


@pytest.fixture
def staff_maintainer(maintainer):
    # What demo_users_ensure gives the demo maintainer: staff with every model permission.
    maintainer.is_staff = True
    maintainer.save()
    maintainer.user_permissions.set(Permission.objects.all())
    return maintainer


@pytest.mark.parametrize(
    "url", ["/admin/auth/user/", "/admin/auth/group/", "/admin/authtoken/tokenproxy/", "/admin/auth/user/add/"]
)
def test_maintainer_cannot_open_account_admin_pages(staff_maintainer, url):
    r = client_for(staff_maintainer).get(url)
    assert r.status_code in (403, 404)


def test_maintainer_cannot_make_itself_superuser_in_the_admin(staff_maintainer):
    c = client_for(staff_maintainer)
    r = c.post(
        f"/admin/auth/user/{staff_maintainer.pk}/change/",
        {"username": staff_maintainer.username, "is_superuser": "on", "is_staff": "on", "is_active": "on"},
    )
    staff_maintainer.refresh_from_db()
    assert r.status_code in (403, 404) and not staff_maintainer.is_superuser


def test_token_admin_does_not_show_keys_to_a_maintainer(staff_maintainer, annotator):
    token = Token.objects.create(user=annotator)
    r = client_for(staff_maintainer).get("/admin/authtoken/tokenproxy/")
    assert token.key.encode() not in r.content


def test_admin_index_hides_the_account_models_from_a_maintainer(staff_maintainer):
    r = client_for(staff_maintainer).get("/admin/")
    assert r.status_code == 200
    assert b"/admin/auth/user/" not in r.content and b"/admin/authtoken/" not in r.content
    assert b"/admin/catalog/image/" in r.content  # the catalogue's admin stays open to it


def test_superuser_still_edits_users_in_the_admin(django_user_model, annotator):
    root = django_user_model.objects.create_superuser("root", password="pw-root-long")
    c = client_for(root)
    assert c.get("/admin/auth/user/").status_code == 200
    assert c.get(f"/admin/auth/user/{annotator.pk}/change/").status_code == 200
    assert c.get("/admin/authtoken/tokenproxy/").status_code == 200


def test_demo_maintainer_gets_no_account_permissions(db):
    from catalog.services import demo_users_ensure

    demo_users_ensure()
    from django.contrib.auth import get_user_model

    m = get_user_model().objects.get(username="maintainer")
    assert m.is_staff and not m.is_superuser
    assert not m.has_perm("auth.change_user") and not m.has_perm("authtoken.view_token")
    assert m.has_perm("catalog.change_image")
