"""Maintainer pages and API: roles, starting runs, progress JSON, figures, bad input."""

import pytest
from django.urls import reverse

from catalog.models import Dataset, ImageClass
from curation import services
from curation.models import CurationRun
from tests.conftest import client_for

from .conftest import tiny_dataset  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def done_run(ds):
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=4, enqueue=False)
    return services.curation_run_execute(run_id=run.id)


def test_anonymous_goes_to_login_and_other_roles_are_forbidden(client, reviewer, annotator, tiny_dataset):  # noqa: F811
    r = client.get(reverse("curation:index"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    for user, url in (
        (reviewer, reverse("curation:index")),
        (annotator, reverse("curation:meta_labels", args=[tiny_dataset.slug])),
    ):
        r = client_for(user).get(url)
        assert r.status_code == 403 and tiny_dataset.slug not in r.content.decode()


def test_api_refuses_non_maintainers(api, reviewer, tiny_dataset):  # noqa: F811
    api.force_authenticate(reviewer)
    r = api.post("/api/curation/runs/", {"dataset": tiny_dataset.slug}, format="json")
    assert r.status_code == 403
    assert CurationRun.objects.count() == 0


def test_maintainer_starts_a_run_from_the_page(maintainer, tiny_dataset):  # noqa: F811
    c = client_for(maintainer)
    token = c.get(reverse("curation:index")).cookies["csrftoken"].value
    r = c.post(
        reverse("curation:index"),
        {
            "dataset": tiny_dataset.slug,
            "split": "",
            "selector": "paper",
            "text_field": "both",
            "factor_text": "wording",
            "chunk_size": "3",
            "csrfmiddlewaretoken": token,
        },
    )
    run = CurationRun.objects.get()
    assert r.status_code == 302 and r.url == reverse("curation:run", args=[run.id])
    assert run.created_by == maintainer and run.params["chunk_size"] == 3 and run.chunks.count() == 3


def test_starting_an_empty_dataset_from_the_page_says_why_and_creates_nothing(maintainer, db):
    Dataset.objects.create(slug="void", name="Void")
    c = client_for(maintainer)
    token = c.get(reverse("curation:index")).cookies["csrftoken"].value
    r = c.post(reverse("curation:index"), {"dataset": "void", "csrfmiddlewaretoken": token}, follow=True)
    assert "Nothing to curate: dataset void has no final annotation" in r.content.decode()
    assert CurationRun.objects.count() == 0


def test_progress_json_and_run_page_show_figures(maintainer, tiny_dataset):  # noqa: F811
    run = done_run(tiny_dataset)
    c = client_for(maintainer)
    p = c.get(reverse("curation:run_progress", args=[run.id])).json()
    assert (p["status"], p["processed"], p["total"], p["chunks"]["done"]) == ("done", 8, 8, 2)
    page = c.get(reverse("curation:run", args=[run.id])).content.decode()
    for key in ("factor_counts", "factors_per_image", "spearman"):
        assert reverse("curation:figure", args=[run.id, key, "png"]) in page
    png = c.get(reverse("curation:figure", args=[run.id, "spearman", "png"]))
    assert png["Content-Type"] == "image/png" and b"".join(png.streaming_content)[:4] == b"\x89PNG"
    svg = c.get(reverse("curation:figure", args=[run.id, "factor_counts", "svg"]))
    assert b"<svg" in b"".join(svg.streaming_content)[:2000]


def test_api_start_with_bad_input_gets_a_clear_400_and_creates_nothing(api, maintainer, tiny_dataset):  # noqa: F811
    api.force_authenticate(maintainer)
    r = api.post("/api/curation/runs/", {"dataset": tiny_dataset.slug, "selector": "oracle"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
    r = api.post("/api/curation/runs/", {"dataset": "nope"}, format="json")
    assert r.status_code == 404 and "No dataset with slug" in r.json()["error"]["message"]
    r = api.post("/api/curation/runs/", {"dataset": tiny_dataset.slug, "selector": "learned"}, format="json")
    assert r.status_code == 409 and "selector is trained yet" in r.json()["error"]["message"]
    assert CurationRun.objects.count() == 0


def test_api_run_detail_has_statistics(api, maintainer, tiny_dataset):  # noqa: F811
    run = done_run(tiny_dataset)
    api.force_authenticate(maintainer)
    body = api.get(f"/api/curation/runs/{run.id}/").json()
    assert body["status"] == "done"
    assert body["stats"]["factor_counts"]["all"]["images"] == 8
    r = api.get("/api/curation/runs/999999/")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_api_corrects_a_meta_label_and_refuses_unknown_ones(api, maintainer, tiny_dataset):  # noqa: F811
    cls = ImageClass.objects.get(dataset=tiny_dataset, index=0)
    api.force_authenticate(maintainer)
    r = api.patch(f"/api/curation/classes/{cls.id}/meta-label/", {"meta_label": "spaceship"}, format="json")
    assert r.status_code == 400 and "meta_label" in r.json()["error"]["details"]
    cls.refresh_from_db()
    assert cls.meta_label == "dog"
    r = api.patch(f"/api/curation/classes/{cls.id}/meta-label/", {"meta_label": "primate"}, format="json")
    assert r.status_code == 200 and r.json()["meta_label"] == "primate"
    cls.refresh_from_db()
    assert (cls.meta_label, cls.meta_label_source) == ("primate", "maintainer")


def test_meta_label_page_escapes_class_names(maintainer, tiny_dataset):  # noqa: F811
    ImageClass.objects.filter(dataset=tiny_dataset, index=0).update(name="<script>alert(1)</script>")
    html = client_for(maintainer).get(reverse("curation:meta_labels", args=[tiny_dataset.slug])).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_bad_chunk_size_from_the_page_says_why_and_creates_nothing(maintainer, tiny_dataset):  # noqa: F811
    c = client_for(maintainer)
    token = c.get(reverse("curation:index")).cookies["csrftoken"].value
    for bad in ("lots", "0"):
        r = c.post(
            reverse("curation:index"),
            {"dataset": tiny_dataset.slug, "chunk_size": bad, "csrfmiddlewaretoken": token},
            follow=True,
        )
        assert r.status_code == 200
        assert ("is not a whole number" in r.content.decode()) or ("chunk_size must be between" in r.content.decode())
    assert CurationRun.objects.count() == 0


def test_post_without_csrf_token_is_refused(maintainer, tiny_dataset):  # noqa: F811
    r = client_for(maintainer).post(reverse("curation:index"), {"dataset": tiny_dataset.slug})
    assert r.status_code == 403 and CurationRun.objects.count() == 0
