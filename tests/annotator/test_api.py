"""The REST API: next, submit, skip, my annotations; token auth; 404 for other people's things."""

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator.models import Assignment, AssignmentStatus
from catalog.models import Annotation, Image

# New campaigns ask for the main factor: an answer with two factors names one.
ANSWER = {
    "factors": ["pose", "background"],
    "main_factor": "pose",
    "nothing_differs": False,
    "justification": "turned",
    "one_word": "pose",
}


def _token_client(user) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return c


@pytest.mark.embedded
def test_token_client_gets_next_submits_and_lists_its_annotation(campaign, annotator):
    c = _token_client(annotator)
    nxt = c.post(f"/api/annotate/campaigns/{campaign.id}/next")
    assert nxt.status_code == 200
    body = nxt.json()
    assert len(body["prototypes"]) == 3 and body["image"]["thumb_url"].endswith("/thumb")
    assert "kind" not in body and "planned" not in body  # gold and overlap look like any other image
    sub = c.post(f"/api/annotate/assignments/{body['id']}/submit", ANSWER, format="json")
    assert sub.status_code == 201
    mine = c.get("/api/annotate/annotations/").json()
    assert mine["count"] == 1 and mine["results"][0]["factors"] == ["pose", "background"]


@pytest.mark.embedded
def test_next_answers_what_its_schema_serializer_would(campaign, annotator):
    """next returns its payload without building AssignmentSerializer: the JSON must be exactly
    the serializer's (fields, types, datetime format), on a new lease and on a reload."""
    from rest_framework.renderers import JSONRenderer

    from annotator.api import AssignmentSerializer, assignment_payload

    c = _token_client(annotator)
    for _ in range(2):  # a new lease, then the held one again
        r = c.post(f"/api/annotate/campaigns/{campaign.id}/next")
        assert r.status_code == 200
        lease = Assignment.objects.select_related("image__image_class", "campaign").get(pk=r.json()["id"])
        expected = json.loads(JSONRenderer().render(AssignmentSerializer(assignment_payload(lease, annotator)).data))
        assert r.json() == expected
        assert set(r.json()) == set(AssignmentSerializer().fields)
        assert r.json()["started_at"].endswith("Z")


@pytest.mark.embedded
def test_image_urls_follow_the_script_prefix(campaign, annotator):
    """The image URLs are reversed once per script prefix (a deployment under a sub-path)."""
    from django.urls import reverse, set_script_prefix

    from annotator.api import _image_ref

    try:
        for prefix in ("/", "/fov/", "/"):
            set_script_prefix(prefix)
            ref = _image_ref(42)
            assert ref["thumb_url"] == reverse("annotator:image", args=[42, "thumb"])
            assert ref["full_url"] == reverse("annotator:image", args=[42, "full"])
            assert ref["thumb_url"].startswith(prefix)
    finally:
        set_script_prefix("/")


@pytest.mark.embedded
def test_bad_answer_gets_the_error_shape_with_the_field_and_saves_nothing(campaign, annotator):
    c = _token_client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    resp = c.post(f"/api/annotate/assignments/{aid}/submit", {**ANSWER, "justification": ""}, format="json")
    assert resp.status_code == 400
    assert resp.json()["error"]["field"] == "justification"
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(pk=aid).status == AssignmentStatus.LEASED


@pytest.mark.embedded
def test_malformed_body_is_a_400_not_a_500(campaign, annotator):
    c = _token_client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    resp = c.post(f"/api/annotate/assignments/{aid}/submit", {"factors": "pose"}, format="json")
    assert resp.status_code == 400 and "error" in resp.json()
    assert not Annotation.objects.exists()


@pytest.mark.embedded
def test_next_for_a_campaign_that_does_not_exist_is_a_404(campaign, annotator):
    c = _token_client(annotator)
    for missing in (campaign.id + 1000, 2**63, 10**30):
        r = c.post(f"/api/annotate/campaigns/{missing}/next")
        assert r.status_code == 404 and r.json()["error"]["code"]
    assert not Assignment.objects.exists()


@pytest.mark.embedded
def test_skip_via_api(campaign, annotator):
    c = _token_client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    refused = c.post(f"/api/annotate/assignments/{aid}/skip", {"reason": ""}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "reason"
    ok = c.post(f"/api/annotate/assignments/{aid}/skip", {"reason": "too dark"}, format="json")
    assert ok.status_code == 200 and ok.json() == {"assignment": aid, "status": "skipped"}
    assert Assignment.objects.get(pk=aid).skip_reason == "too dark"


@pytest.mark.embedded
def test_other_annotators_annotation_and_assignment_are_404_via_api(campaign, annotator, other_annotator):
    c = _token_client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    c.post(f"/api/annotate/assignments/{aid}/submit", ANSWER, format="json")
    ann = Annotation.objects.get()
    aid2 = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    o = _token_client(other_annotator)
    assert o.get(f"/api/annotate/annotations/{ann.id}").status_code == 404
    assert o.put(f"/api/annotate/annotations/{ann.id}", ANSWER, format="json").status_code == 404
    assert o.post(f"/api/annotate/assignments/{aid2}/submit", ANSWER, format="json").status_code == 404
    assert o.get("/api/annotate/annotations/").json()["count"] == 0
    assert Annotation.objects.count() == 1


@pytest.mark.embedded
def test_revise_via_api_adds_a_version(campaign, annotator):
    c = _token_client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    c.post(f"/api/annotate/assignments/{aid}/submit", ANSWER, format="json")
    ann = Annotation.objects.get()
    resp = c.put(
        f"/api/annotate/annotations/{ann.id}", {**ANSWER, "factors": ["color"], "main_factor": ""}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["version"] == 2


@pytest.mark.embedded
def test_api_needs_authentication_and_the_annotator_role(campaign, reviewer):
    assert APIClient().post(f"/api/annotate/campaigns/{campaign.id}/next").status_code in (401, 403)
    assert _token_client(reviewer).post(f"/api/annotate/campaigns/{campaign.id}/next").status_code == 403


@pytest.mark.embedded
def test_session_api_keeps_csrf(campaign, annotator):
    c = APIClient(enforce_csrf_checks=True)
    c.force_login(annotator)
    assert c.post(f"/api/annotate/campaigns/{campaign.id}/next").status_code == 403
    assert not Assignment.objects.exists()


@pytest.mark.embedded
def test_schema_lists_the_annotator_endpoints(db, annotator):
    c = APIClient()
    c.force_authenticate(annotator)
    schema = c.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/annotate/campaigns/{campaign_id}/next", "/api/annotate/assignments/{assignment_id}/submit"):
        assert path in schema


@pytest.mark.embedded
def test_next_api_does_not_reveal_file_names(qualified_campaign, annotator):
    """Gold and qualification images were recognisable from their names (espresso_brighter.jpg)."""
    c = _token_client(annotator)
    body = c.post(f"/api/annotate/campaigns/{qualified_campaign.id}/next").json()
    assert "file_name" not in body["image"] and all("file_name" not in p for p in body["prototypes"])
    image = Image.objects.get(pk=body["image"]["id"])
    assert image.file_name not in json.dumps(body)
