"""Finding 11: what schemathesis found, each pinned by a plain test (tests/test_api_schema.py
runs the fuzzer itself)."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.annotator.conftest import campaign, dataset, qualified_campaign  # noqa: F401 (fixtures)

pytestmark = pytest.mark.embedded


def _client(user) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=user).key)
    return c


@pytest.fixture
def schema(client):
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    return r.json()


def test_every_operation_documents_its_error_statuses(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            assert {"400", "401", "403", "404"} <= set(op["responses"]), (method, path)
            if method in ("post", "put", "patch"):
                assert "409" in op["responses"], (method, path)


def test_downloads_document_the_media_types_they_send(schema):
    archive = schema["paths"]["/api/releases/{id}/archive/"]["get"]["responses"]["200"]["content"]
    assert set(archive) == {"application/gzip"}
    files = schema["paths"]["/api/releases/{id}/files/{name}"]["get"]["responses"]["200"]["content"]
    assert {"text/csv", "text/markdown", "application/json", "application/jsonlines"} <= set(files)


def test_adjudication_is_documented_as_201(schema):
    assert "201" in schema["paths"]["/api/review/images/{image_id}/adjudication/"]["post"]["responses"]


def test_request_bodies_are_json_only(schema):
    for item in schema["paths"].values():
        for op in item.values():
            if "requestBody" in op:
                assert set(op["requestBody"]["content"]) == {"application/json"}


def test_reject_documents_its_required_comment_and_accept_does_not(schema):
    comps = schema["components"]["schemas"]

    def body(path):
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return comps[ref.rsplit("/", 1)[-1]]

    assert "comment" in body("/api/review/annotations/{annotation_id}/reject/")["required"]
    assert "comment" not in body("/api/review/annotations/{annotation_id}/accept/").get("required", [])


def test_release_licence_is_an_spdx_enum_and_notes_are_bounded(schema):
    comps = schema["components"]["schemas"]
    comp = comps["ReleaseCreate"]["properties"]
    enum = comps[comp["license"]["allOf"][0]["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert "CC-BY-4.0" in enum and "CC-BY-NC-4.0" in enum and "'maxLength': 20000" in str(comp["notes"])


def test_a_number_is_not_accepted_as_text(campaign, annotator):  # noqa: F811
    c = _client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    body = {"factors": ["pose"], "nothing_differs": False, "justification": 123, "one_word": "pose"}
    r = c.post(f"/api/annotate/assignments/{aid}/submit", body, format="json")
    assert r.status_code == 400 and r.json()["error"]["field"] == "justification"


def test_missing_credentials_are_a_401_with_a_challenge():
    r = APIClient().post("/api/annotate/campaigns/1/next")
    assert r.status_code == 401 and r["WWW-Authenticate"] == "Token"


def test_meta_label_patch_with_nothing_changes_nothing(maintainer, dataset):  # noqa: F811
    cls = dataset.classes.first()
    before = (cls.meta_label, cls.meta_label_source)
    r = _client(maintainer).patch(f"/api/curation/classes/{cls.pk}/meta-label/", {}, format="json")
    assert r.status_code == 200 and r.json()["id"] == cls.pk
    cls.refresh_from_db()
    assert (cls.meta_label, cls.meta_label_source) == before


def test_skipping_a_qualification_image_is_a_conflict(qualified_campaign, annotator):  # noqa: F811
    c = _client(annotator)
    aid = c.post(f"/api/annotate/campaigns/{qualified_campaign.id}/next").json()["id"]
    r = c.post(f"/api/annotate/assignments/{aid}/skip", {"reason": "too dark"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_skippable"


def test_release_with_a_free_text_licence_is_refused(maintainer, db):
    from catalog.models import Dataset

    Dataset.objects.create(slug="d", name="D")
    r = _client(maintainer).post(
        "/api/releases/", {"dataset": "d", "version": "1.0.0", "curation_run": 1, "license": "do what you like"}
    )
    assert r.status_code == 400 and r.json()["error"]["field"] == "license"


def test_release_for_a_missing_curation_run_is_a_404(maintainer, db):
    from catalog.models import Dataset

    Dataset.objects.create(slug="d", name="D")
    r = _client(maintainer).post("/api/releases/", {"dataset": "d", "version": "1.0.0", "curation_run": 12345})
    assert r.status_code == 404 and r.json()["error"]["field"] == "curation_run"
