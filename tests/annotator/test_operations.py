"""Operations from pages (maintainers): pause, close and reopen a campaign, reset a
qualification, export a campaign's raw answers (every version, annotators pseudonymised)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from annotator.models import Campaign, Qualification, QualificationStatus
from annotator.services import annotation_revise, annotation_submit, assignment_next
from tests.annotator.conftest import answer
from tests.conftest import client_for

pytestmark = pytest.mark.embedded


def _post(user, url: str, data: dict | None = None, *, page: str):
    """POST as the page's form does: CSRF token from the page (enforced, as in service)."""
    c = client_for(user)
    c.get(page)
    token = c.cookies["csrftoken"].value if "csrftoken" in c.cookies else "none"
    return c.post(url, {**(data or {}), "csrfmiddlewaretoken": token})


def _status(maintainer, campaign, action):
    page = reverse("annotator:campaign", args=[campaign.pk])
    return _post(maintainer, reverse("annotator:campaign-status", args=[campaign.pk]), {"action": action}, page=page)


def test_pause_close_and_reopen_from_the_campaign_page(campaign, maintainer, annotator, api):
    assert client_for(maintainer).get(reverse("annotator:campaign", args=[campaign.pk])).status_code == 200
    assert _status(maintainer, campaign, "pause").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    api.force_authenticate(annotator)
    assert api.post(f"/api/annotate/campaigns/{campaign.id}/next").status_code == 409  # hands out nothing
    _status(maintainer, campaign, "close")
    campaign.refresh_from_db()
    assert campaign.status == "done"
    _status(maintainer, campaign, "reopen")
    campaign.refresh_from_db()
    assert campaign.status == "active"
    assert api.post(f"/api/annotate/campaigns/{campaign.id}/next").status_code == 200


def test_status_change_needs_a_maintainer_a_post_and_a_known_action(campaign, maintainer, annotator):
    url = reverse("annotator:campaign-status", args=[campaign.pk])
    page = reverse("annotator:campaign", args=[campaign.pk])
    other = client_for(annotator)
    other.get(reverse("annotator:index"))  # the annotator's own page gives them a CSRF cookie
    token = other.cookies["csrftoken"].value if "csrftoken" in other.cookies else ""
    assert other.post(url, {"action": "pause", "csrfmiddlewaretoken": token}).status_code == 403
    assert client_for(maintainer).get(url).status_code == 405
    assert _post(maintainer, url, {"action": "explode"}, page=page).status_code == 400
    missing = reverse("annotator:campaign-status", args=[999999])
    assert _post(maintainer, missing, {"action": "pause"}, page=page).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_reset_a_failed_qualification_from_the_page(qualified_campaign, maintainer, annotator):
    assignment_next(campaign_id=qualified_campaign.id, user=annotator)
    Qualification.objects.filter(campaign=qualified_campaign, annotator=annotator).update(
        status=QualificationStatus.FAILED, score=0.1
    )
    page = client_for(maintainer).get(reverse("annotator:campaign", args=[qualified_campaign.pk]))
    assert annotator.username in page.content.decode()
    url = reverse("annotator:qualification-reset", args=[qualified_campaign.pk, annotator.pk])
    page = reverse("annotator:campaign", args=[qualified_campaign.pk])
    assert _post(annotator, url, page=page).status_code == 403
    assert _post(maintainer, url, page=page).status_code == 302
    assert not Qualification.objects.filter(campaign=qualified_campaign, annotator=annotator).exists()
    assert _post(maintainer, url, page=page).status_code == 404  # nothing left to reset


def _answered(campaign, annotator, other_annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    annotation_revise(
        annotation_id=ann.pk, user=annotator, answer=answer(factors=["color"], justification="red, 'quoted'")
    )
    b = assignment_next(campaign_id=campaign.id, user=other_annotator)
    annotation_submit(assignment_id=b.pk, user=other_annotator, answer=answer(justification="a\nnew line"))


def test_raw_answers_as_csv_hold_every_version_with_pseudonyms(campaign, maintainer, annotator, other_annotator):
    _answered(campaign, annotator, other_annotator)
    r = client_for(maintainer).get(reverse("annotator:campaign-answers", args=[campaign.pk, "csv"]))
    assert r.status_code == 200 and r["X-Total-Rows"] == "3"
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(rows) == 3
    assert [(row["version"], row["reason"]) for row in rows[:2]] == [("1", "create"), ("2", "revise")]
    assert rows[1]["factors"] == "color" and rows[1]["justification"] == "red, 'quoted'"
    assert rows[2]["justification"] == "a\nnew line"
    names = {row["annotator"] for row in rows}
    assert len(names) == 2 and all(n.startswith("a-") for n in names)
    text = "".join(str(v) for row in rows for v in row.values())
    for u in (annotator, other_annotator):
        assert u.username not in text


def test_raw_answers_as_jsonl_and_pseudonyms_differ_between_campaigns(
    campaign, maintainer, annotator, other_annotator, dataset
):
    from annotator.selectors import annotator_pseudonym

    _answered(campaign, annotator, other_annotator)
    r = client_for(maintainer).get(reverse("annotator:campaign-answers", args=[campaign.pk, "jsonl"]))
    rows = [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]
    assert len(rows) == 3 and rows[1]["factors"] == ["color"]
    assert rows[0]["annotator"] == annotator_pseudonym(campaign_id=campaign.pk, user_id=annotator.pk)
    assert annotator_pseudonym(campaign_id=campaign.pk + 1, user_id=annotator.pk) != rows[0]["annotator"]


def test_raw_answers_are_for_maintainers_only_and_know_two_formats(campaign, maintainer, annotator):
    assert (
        client_for(annotator).get(reverse("annotator:campaign-answers", args=[campaign.pk, "csv"])).status_code == 403
    )
    assert (
        client_for(maintainer).get(reverse("annotator:campaign-answers", args=[campaign.pk, "xml"])).status_code == 404
    )
    assert Campaign.objects.filter(pk=campaign.pk).exists()
