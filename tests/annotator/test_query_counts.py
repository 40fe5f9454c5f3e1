"""The number of SQL queries per request does not grow with the data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from annotator.services import annotation_submit, assignment_next, campaign_create
from tests.annotator.conftest import answer, make_dataset
from tests.conftest import client_for

ANSWER = {"factors": ["pose"], "nothing_differs": False, "justification": "turned", "one_word": "pose"}


def _queries_per_request(tmp_path, user, helper, n_images: int, slug: str) -> dict[str, int]:
    ds = make_dataset(tmp_path, n_images=n_images, n_gold=0, slug=slug)
    campaign = campaign_create(name=slug, dataset=ds, overlap_fraction=0.2, gold_rate=0.0)
    # Grow the data around the user: another annotator's finished work and open leases.
    for _ in range(n_images // 3):
        a = assignment_next(campaign_id=campaign.id, user=helper)
        if a is None:
            break
        annotation_submit(assignment_id=a.pk, user=helper, answer=answer())
    api = APIClient()
    api.force_authenticate(user)
    counts = {}
    with CaptureQueriesContext(connection) as q:
        aid = api.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    counts["api_next"] = len(q)
    page = client_for(user)
    with CaptureQueriesContext(connection) as q:
        assert page.get(reverse("annotator:assignment", args=[aid])).status_code == 200
    counts["form"] = len(q)
    with CaptureQueriesContext(connection) as q:
        assert api.post(f"/api/annotate/assignments/{aid}/submit", ANSWER, format="json").status_code == 201
    counts["api_submit"] = len(q)
    with CaptureQueriesContext(connection) as q:
        assert api.get("/api/annotate/annotations/").status_code == 200
    counts["api_mine"] = len(q)
    return counts


@pytest.mark.embedded
def test_query_count_is_constant_as_the_campaign_grows(tmp_path, annotator, other_annotator, django_user_model):
    small = _queries_per_request(tmp_path, annotator, other_annotator, 6, "small")
    big_user = django_user_model.objects.create(username="big")
    big_user.groups.set(annotator.groups.all())
    big = _queries_per_request(tmp_path, big_user, other_annotator, 60, "big")
    assert small == big
    # A first lease is the costliest: roles, the user's row lock (one claim per user at a time), campaign + held lease, claim + re-check under the
    # lock, prototypes (the current run, then its prototypes: read once, reused for the answer), insert, progress, and the savepoint
    # pair of the test's transaction (BEGIN/COMMIT are not counted). A submit: roles, lock,
    # guarded n_done update (it takes the item's lock), annotation, version, audit trail row
    # (review's signal), assignment update, the campaign's and the annotator's stored counters,
    # savepoint pair; on PostgreSQL the six writes but the audit row are one statement.
    budget = {"api_next": 11, "form": 7, "api_submit": 10 if connection.vendor == "sqlite" else 6, "api_mine": 2}
    assert all(small[k] <= budget[k] for k in budget), small


@pytest.mark.django_db
def test_token_authentication_reads_the_roles_in_the_same_query(annotator):
    """On PostgreSQL a token request costs no more queries than an already-authenticated one:
    the token, its user and the user's groups (roles) come back in one query."""
    from rest_framework.authtoken.models import Token

    forced = APIClient()
    forced.force_authenticate(annotator)
    with CaptureQueriesContext(connection) as q:
        assert forced.get("/api/annotate/annotations/").status_code == 200
    n_forced = len(q)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    with CaptureQueriesContext(connection) as q:
        assert by_token.get("/api/annotate/annotations/").status_code == 200
    assert len(q) == n_forced
    # A wrong token is still refused: 401 with the challenge (token authentication comes first).
    refused = APIClient().get("/api/annotate/annotations/", HTTP_AUTHORIZATION="Token nope")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token" and refused.json()["error"]["code"]
