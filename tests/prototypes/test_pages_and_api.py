"""The maintainer page and the read-only API: roles, content, escaping."""

from __future__ import annotations

import pytest

from prototypes.models import PrototypeRun
from tests.conftest import client_for
from tests.prototypes.conftest import compute_tiny

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(dataset_factory) -> PrototypeRun:
    ds = dataset_factory(n_images=6, n_classes=2)
    return compute_tiny(ds, "--fill-incorrect")


def test_maintainer_sees_runs_and_each_class_prototypes(maintainer, run):
    c = client_for(maintainer)
    page = c.get("/prototypes/").content.decode()
    assert f"/prototypes/runs/{run.pk}/" in page and "random weights" in page
    detail = c.get(f"/prototypes/runs/{run.pk}/").content.decode()
    for p in run.prototypes.select_related("image"):
        assert f"/annotate/images/{p.image_id}/thumb" in detail and p.image.file_name in detail


@pytest.mark.parametrize("who", ["annotator", "reviewer", "outsider"])
def test_prototype_pages_need_the_maintainer_role(request, who, run):
    c = client_for(request.getfixturevalue(who))
    names = list(run.prototypes.values_list("image__file_name", flat=True))
    for url in ("/prototypes/", f"/prototypes/runs/{run.pk}/"):
        r = c.get(url)
        body = r.content.decode()
        assert r.status_code == 403
        # The refusal page, and nothing of the run: no link to it, no prototype, no weights.
        assert "403 Forbidden" in body
        assert f"/prototypes/runs/{run.pk}/" not in body and "random weights" not in body
        assert not any(name in body for name in names)


def test_anonymous_is_sent_to_login(client, run):
    r = client.get("/prototypes/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_class_names_are_escaped(maintainer, run):
    cls = run.dataset.classes.first()
    cls.name = "<script>alert(1)</script>"
    cls.save()
    body = client_for(maintainer).get(f"/prototypes/runs/{run.pk}/").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;" in body


def test_make_current_switches_the_current_run_and_needs_csrf(maintainer, run, dataset_factory):
    compute_tiny(run.dataset, "--no-current")
    newer = PrototypeRun.objects.exclude(pk=run.pk).get()
    c = client_for(maintainer)
    refused = c.post(f"/prototypes/runs/{newer.pk}/make-current")  # no CSRF token
    assert refused.status_code == 403 and "CSRF verification failed" in refused.content.decode()
    newer.refresh_from_db()
    assert not newer.is_current
    page = c.get(f"/prototypes/runs/{newer.pk}/")
    token = page.cookies["csrftoken"].value
    r = c.post(f"/prototypes/runs/{newer.pk}/make-current", {"csrfmiddlewaretoken": token}, follow=True)
    assert r.redirect_chain == [(f"/prototypes/runs/{newer.pk}/", 302)]
    shown = r.content.decode()
    assert f"Run {newer.pk} is now the current prototype run of {run.dataset.slug}." in shown
    assert "Make this the current run" not in shown  # the page now shows it as current
    newer.refresh_from_db()
    run.refresh_from_db()
    assert newer.is_current and not run.is_current


def test_api_lists_runs_and_prototypes_for_signed_in_users(api, annotator, run):
    api.force_authenticate(annotator)
    runs = api.get("/api/prototypes/runs/", {"dataset": run.dataset.slug}).json()
    assert [r["id"] for r in runs["results"]] == [run.pk]
    assert runs["results"][0]["weights"] == "none" and runs["results"][0]["is_current"]
    protos = api.get(f"/api/prototypes/runs/{run.pk}/prototypes/", {"class_index": 7}).json()["results"]
    assert [p["rank"] for p in protos] == [1, 2, 3] and {p["class_index"] for p in protos} == {7}


def test_api_is_read_only_and_refuses_anonymous_and_bad_filters(api, annotator, run):
    anonymous = api.get("/api/prototypes/runs/")
    assert anonymous.status_code in (401, 403)
    assert anonymous.json()["error"]["code"] == "not_authenticated" and "results" not in anonymous.json()
    api.force_authenticate(annotator)
    deleted = api.delete(f"/api/prototypes/runs/{run.pk}/")
    assert deleted.status_code == 405
    assert deleted.json()["error"] == {
        "code": "method_not_allowed",
        "message": 'Method "DELETE" not allowed.',
        "field": None,
        "details": {},
    }
    r = api.get(f"/api/prototypes/runs/{run.pk}/prototypes/", {"class_index": "x"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "class_index"
    assert "class_index" in r.json()["error"]["message"]
    missing = api.get("/api/prototypes/runs/", {"dataset": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    run.refresh_from_db()
    assert PrototypeRun.objects.filter(pk=run.pk).exists()
