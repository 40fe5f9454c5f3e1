"""The API against its own OpenAPI schema (schemathesis), as each role and anonymously.

The schema is loaded from /api/schema/ and every operation is called in-process through the
WSGI application (the same connection as the test, so it sees the test's data), with a bounded
number of generated examples per operation (SCHEMATHESIS_MAX_EXAMPLES, default 8). Every
response must pass schemathesis's checks: no server error, a documented status code, content
type and headers, a body that matches the documented schema, and valid-by-the-schema requests
accepted.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from infra.api import MAX_ID
from infra.roles import Role

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
ROLES = ("annotator", "reviewer", "maintainer", "anonymous")


@pytest.fixture
def api_world(db, tmp_path, django_user_model, settings):
    """A small world for the API to talk about: a campaign with leases and answers (two of them
    on one image, to adjudicate), and a token per role. Returns tokens and the ids by kind."""
    from annotator.services import annotation_submit, assignment_next, campaign_create
    from tests.annotator.conftest import answer, make_dataset

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users, tokens = {}, {}
    for name, roles in (
        ("annotator", (Role.ANNOTATOR,)),
        ("helper", (Role.ANNOTATOR,)),
        ("reviewer", (Role.REVIEWER,)),
        ("maintainer", (Role.MAINTAINER, Role.REVIEWER)),
    ):
        user = django_user_model.objects.create_user(username=f"st-{name}", password="pw-" + name)
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        users[name] = user
        tokens[name] = Token.objects.create(user=user).key
    ds = make_dataset(tmp_path)
    campaign = campaign_create(name="schema", dataset=ds, overlap_fraction=1.0, overlap_copies=2, gold_rate=0.0)
    for name in ("annotator", "helper"):
        for _ in range(2):
            lease = assignment_next(campaign_id=campaign.id, user=users[name])
            annotation_submit(assignment_id=lease.pk, user=users[name], answer=answer())
        assignment_next(campaign_id=campaign.id, user=users[name])  # one open lease each
    from annotator.models import Assignment
    from catalog.models import Annotation

    ids = {
        "campaign": [campaign.id],
        "assignment": list(Assignment.objects.filter(annotator=users["annotator"]).values_list("pk", flat=True)),
        "annotation": list(Annotation.objects.filter(source="user").values_list("pk", flat=True)),
        "image": list(Annotation.objects.filter(source="user").values_list("image_id", flat=True).distinct()),
        "class": list(ds.classes.values_list("pk", flat=True)),
    }
    return {"tokens": tokens, "ids": ids}


# Which ids a path parameter stands for (by path prefix and name).
_ID_KINDS = {
    ("/api/annotate/campaigns/", "campaign_id"): "campaign",
    ("/api/annotate/assignments/", "assignment_id"): "assignment",
    ("/api/annotate/annotations/", "annotation_id"): "annotation",
    ("/api/review/annotations/", "annotation_id"): "annotation",
    ("/api/review/images/", "image_id"): "image",
    ("/api/curation/classes/", "class_id"): "class",
}


def _point_at_real_objects(case, ids: dict[str, list[int]]) -> None:
    """Half of the generated ids (the even ones) are swapped for ids of real objects, so that
    operations get past the 404 to the code behind it; only valid values are swapped, so a
    request schemathesis meant as valid stays valid and one meant as invalid stays invalid."""
    for name, value in list((case.path_parameters or {}).items()):
        kind = next((k for (prefix, n), k in _ID_KINDS.items() if n == name and case.path.startswith(prefix)), None)
        if kind and ids.get(kind) and isinstance(value, int) and 0 <= value <= MAX_ID and value % 2 == 0:
            case.path_parameters[name] = ids[kind][(value // 2) % len(ids[kind])]


@pytest.fixture
def _keep_test_connection():
    # The WSGI handler closes "obsolete" connections around each request, which inside the
    # test's transaction would be this test's own connection (Django's test client does the same).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _load_schema():
    from config.wsgi import application

    # Generating the schema touches no table, so it can be fetched while tests are collected.
    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _load_schema()


def _schema_test(role: str):
    @schema.parametrize()
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def test(case, api_world, _keep_test_connection):
        _point_at_real_objects(case, api_world["ids"])
        headers = {"Authorization": f"Token {api_world['tokens'][role]}"} if role != "anonymous" else {}
        case.call_and_validate(headers=headers)

    test.__name__ = f"test_api_matches_its_schema_as_{role}"
    return test


# One test per role (schemathesis's lazy schema takes no parametrized fixture); each runs every
# operation of the schema as a sub-test.
test_api_matches_its_schema_as_annotator = _schema_test("annotator")
test_api_matches_its_schema_as_reviewer = _schema_test("reviewer")
test_api_matches_its_schema_as_maintainer = _schema_test("maintainer")
test_api_matches_its_schema_as_anonymous = _schema_test("anonymous")
