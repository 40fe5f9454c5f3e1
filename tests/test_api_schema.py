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

from infra.roles import Role

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
ROLES = ("annotator", "reviewer", "maintainer", "anonymous")


@pytest.fixture
def api_world(db, tmp_path, django_user_model, settings):
    """A small world for the API to talk about, and a token per role."""
    from tests.annotator.conftest import make_dataset

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tokens: dict[str, str] = {}
    for name, roles in (
        ("annotator", (Role.ANNOTATOR,)),
        ("reviewer", (Role.REVIEWER,)),
        ("maintainer", (Role.MAINTAINER, Role.REVIEWER)),
    ):
        user = django_user_model.objects.create_user(username=f"st-{name}", password="pw-" + name)
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        tokens[name] = Token.objects.create(user=user).key
    ds = make_dataset(tmp_path)
    from annotator.services import campaign_create

    campaign_create(name="schema", dataset=ds, overlap_fraction=1 / 3, overlap_copies=2, gold_rate=0.0)
    return tokens


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
        headers = {"Authorization": f"Token {api_world[role]}"} if role != "anonymous" else {}
        case.call_and_validate(headers=headers)

    test.__name__ = f"test_api_matches_its_schema_as_{role}"
    return test


# One test per role (schemathesis's lazy schema takes no parametrized fixture); each runs every
# operation of the schema as a sub-test.
test_api_matches_its_schema_as_annotator = _schema_test("annotator")
test_api_matches_its_schema_as_reviewer = _schema_test("reviewer")
test_api_matches_its_schema_as_maintainer = _schema_test("maintainer")
test_api_matches_its_schema_as_anonymous = _schema_test("anonymous")
