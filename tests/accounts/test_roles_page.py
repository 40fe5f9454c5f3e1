"""Finding 1 (the other half): maintainers manage users' roles on a page of ours, which
changes the three role groups and nothing else."""

from __future__ import annotations

import pytest

from infra.roles import Role
from tests.conftest import client_for

pytestmark = pytest.mark.embedded


def _post(user, url, data):
    c = client_for(user)
    c.get("/")  # sets the CSRF cookie (CSRF checks stay enforced)
    token = c.cookies["csrftoken"].value if "csrftoken" in c.cookies else ""
    return c.post(url, {**data, "csrfmiddlewaretoken": token})


def _groups(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_maintainer_sees_every_user_on_the_roles_page(maintainer, annotator, reviewer):
    r = client_for(maintainer).get("/accounts/roles/")
    assert r.status_code == 200
    assert b"ann" in r.content and b"rev" in r.content


def test_maintainer_gives_and_takes_roles(maintainer, annotator):
    r = _post(maintainer, f"/accounts/roles/{annotator.pk}/", {"roles": [Role.REVIEWER]})
    assert r.status_code == 302
    annotator.refresh_from_db()
    assert _groups(annotator) == {Role.REVIEWER}
    assert not annotator.is_staff and not annotator.is_superuser


def test_roles_page_cannot_grant_staff_or_superuser(maintainer, annotator):
    _post(
        maintainer,
        f"/accounts/roles/{annotator.pk}/",
        {"roles": [Role.MAINTAINER], "is_superuser": "on", "is_staff": "on"},
    )
    annotator.refresh_from_db()
    assert _groups(annotator) == {Role.MAINTAINER} and not annotator.is_superuser and not annotator.is_staff


def test_unknown_role_is_refused_and_nothing_changes(maintainer, annotator):
    r = _post(maintainer, f"/accounts/roles/{annotator.pk}/", {"roles": ["superuser"]})
    assert r.status_code == 302
    assert _groups(annotator) == {Role.ANNOTATOR}


def test_maintainer_cannot_drop_its_own_maintainer_role(maintainer):
    r = _post(maintainer, f"/accounts/roles/{maintainer.pk}/", {"roles": [Role.REVIEWER]})
    assert r.status_code == 400
    assert _groups(maintainer) == {Role.MAINTAINER}


def test_superusers_roles_are_not_edited_here(maintainer, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-long")
    r = _post(maintainer, f"/accounts/roles/{root.pk}/", {"roles": []})
    assert r.status_code == 403


@pytest.mark.parametrize("who", ["annotator", "reviewer", "outsider"])
def test_roles_page_is_for_maintainers_only(request, who, annotator):
    user = request.getfixturevalue(who)
    c = client_for(user)
    assert c.get("/accounts/roles/").status_code == 403
    assert _post(user, f"/accounts/roles/{annotator.pk}/", {"roles": [Role.MAINTAINER]}).status_code == 403
    assert _groups(annotator) == {Role.ANNOTATOR}


def test_roles_change_needs_post(maintainer, annotator):
    assert client_for(maintainer).get(f"/accounts/roles/{annotator.pk}/").status_code == 405


def test_roles_page_escapes_user_names(maintainer, django_user_model):
    django_user_model.objects.create_user("<script>x</script>", password="pw-long-enough")
    r = client_for(maintainer).get("/accounts/roles/")
    assert b"<script>x</script>" not in r.content and b"&lt;script&gt;" in r.content
