"""Pages and API: the role matrix, visibility until shared, uploads, downloads, escaping."""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from evaluation.metrics import TOOLKIT_FACTOR_ORDER
from evaluation.models import Evaluation
from tests.conftest import client_for

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def ev(researcher, evaluate, resnet_csv):
    return evaluate(researcher, resnet_csv, toolkit_compatible=True)


def run_task_here_if_queued(ev):
    """With a broker the upload queued the task for a worker, which cannot see this test's
    uncommitted rows: do the worker's job here (test_task.py runs it on a real worker)."""
    from evaluation import services

    if ev.status == "pending" and settings.CELERY_BROKER_URL:
        services.evaluation_compute(evaluation_ids=[ev.pk])
        ev.refresh_from_db()
    return ev


def post(c, url, data):
    token = c.get("/evaluation/").cookies["csrftoken"].value
    return c.post(url, {**data, "csrfmiddlewaretoken": token})


def pages(ev):
    return [
        "/evaluation/",
        f"/evaluation/{ev.pk}/",
        f"/evaluation/{ev.pk}/images/?factor=texture",
        f"/evaluation/{ev.pk}/download.csv",
        f"/evaluation/{ev.pk}/download.json",
        "/evaluation/zoo/",
    ]


def test_anonymous_users_are_sent_to_login_and_get_401_from_the_api(ev):
    c = Client()
    for url in pages(ev):
        r = c.get(url)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], url
    assert c.get("/api/evaluation/evaluations/").status_code in (401, 403)


def test_other_roles_get_403(ev, annotator, reviewer, outsider):
    for user in (annotator, reviewer, outsider):
        c = client_for(user)
        for url in pages(ev):
            assert c.get(url).status_code == 403, (user, url)
        api = client_for(user)
        assert api.get(f"/api/evaluation/evaluations/{ev.pk}/").status_code == 403


def test_owner_and_maintainers_see_an_unshared_evaluation_other_researchers_do_not(
    ev, researcher, other_researcher, maintainer
):
    for user in (researcher, maintainer):
        c = client_for(user)
        for url in pages(ev):
            assert c.get(url).status_code == 200, (user, url)
    c = client_for(other_researcher)
    assert c.get(f"/evaluation/{ev.pk}/").status_code == 404
    assert c.get(f"/api/evaluation/evaluations/{ev.pk}/").status_code == 404
    assert ev.name not in c.get("/evaluation/").content.decode()


def test_sharing_is_a_post_by_the_owner_and_opens_it_to_researchers(ev, researcher, other_researcher):
    owner = client_for(researcher)
    assert owner.get(f"/evaluation/{ev.pk}/share").status_code == 405
    assert post(client_for(other_researcher), f"/evaluation/{ev.pk}/share", {"shared": "1"}).status_code == 404
    r = post(owner, f"/evaluation/{ev.pk}/share", {"shared": "1"})
    assert r.status_code == 302
    assert client_for(other_researcher).get(f"/evaluation/{ev.pk}/").status_code == 200


def test_the_detail_page_answers_where_the_model_fails(ev, researcher):
    html = client_for(researcher).get(f"/evaluation/{ev.pk}/").content.decode()
    assert "2.39" in html and "texture" in html and "Toolkit-compatible" in html
    home = client_for(researcher).get("/evaluation/").content.decode()
    assert 'id="headline"' in home and "2.39" in home


def test_csv_download_has_the_toolkit_layout(ev, researcher):
    body = client_for(researcher).get(f"/evaluation/{ev.pk}/download.csv").content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["model", *TOOLKIT_FACTOR_ORDER, "worst_factor", "average", "worst_100_classes"]
    assert rows[1][0] == "ResNet50" and float(rows[1][rows[0].index("average")]) == pytest.approx(0.746692692)


def test_drilldown_lists_misclassified_first_and_paginates(ev, researcher):
    c = client_for(researcher)
    r = c.get(f"/api/evaluation/evaluations/{ev.pk}/images/", {"factor": "texture"})
    data = r.json()
    assert data["total"] == 282 and data["wrong"] == 171 and data["pages"] == 6
    assert all(not it["correct"] for it in data["items"])
    last = c.get(f"/api/evaluation/evaluations/{ev.pk}/images/", {"factor": "texture", "page": 6}).json()
    assert all(it["correct"] for it in last["items"])
    assert c.get(f"/api/evaluation/evaluations/{ev.pk}/images/", {"factor": "nope"}).status_code == 400
    assert c.get(f"/evaluation/{ev.pk}/images/", {"factor": "nope"}).status_code == 400


def test_upload_through_the_page(researcher, imagenet_x_dataset, resnet_csv, django_capture_on_commit_callbacks):
    c = client_for(researcher)
    page = c.get("/evaluation/")
    token = page.cookies["csrftoken"].value
    up = SimpleUploadedFile("rn.csv", resnet_csv, content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post("/evaluation/", {"name": "mine", "predictions": up, "dataset": "imagenet-x", "labels": "toolkit",
                   "which_factor": "top", "correctness": "class", "split": "val", "csrfmiddlewaretoken": token})  # fmt: skip
    assert r.status_code == 302, r.content.decode()[:500]
    ev = run_task_here_if_queued(Evaluation.objects.get(name="mine"))
    assert ev.status == "done"  # the task ran on commit (eagerly here; on a worker in production)
    assert ev.figures.count() >= 3


def test_a_bad_upload_through_the_page_says_why_and_stores_nothing(researcher, imagenet_x_dataset):
    c = client_for(researcher)
    token = c.get("/evaluation/").cookies["csrftoken"].value
    up = SimpleUploadedFile("bad.csv", b"file_name,predicted_class\na.jpg,5000\n", content_type="text/csv")
    r = c.post("/evaluation/", {"name": "bad", "predictions": up, "dataset": "imagenet-x", "labels": "toolkit",
               "which_factor": "top", "correctness": "class", "split": "val", "csrfmiddlewaretoken": token})  # fmt: skip
    assert r.status_code == 400 and "Line 2" in r.content.decode()
    assert not Evaluation.objects.exists()


def test_api_upload_detail_and_schema(researcher, imagenet_x_dataset, resnet_csv, django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(researcher)
    up = SimpleUploadedFile("rn.csv", resnet_csv, content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(
            "/api/evaluation/evaluations/",
            {"name": "api", "predictions": up, "label_source": "toolkit"},
            format="multipart",
        )
    assert r.status_code == 201, r.content
    run_task_here_if_queued(Evaluation.objects.get(pk=r.json()["id"]))
    d = api.get(f"/api/evaluation/evaluations/{r.json()['id']}/").json()
    assert d["status"] == "done" and d["metrics"]["kinds"]["class"]["factors"]["texture"]["n"] == 282
    bad = api.post("/api/evaluation/evaluations/", {"name": "x", "predictions": SimpleUploadedFile("x.csv", b""),
                   "label_source": "toolkit"}, format="multipart")  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] in ("empty_file", "invalid")
    schema = api.get("/api/schema/").content.decode()
    assert "/api/evaluation/evaluations/" in schema and "/api/evaluation/compare/" in schema


def test_comparison_of_two_models(researcher, evaluate, resnet_csv):
    from tests.evaluation.helpers import reference_csv

    a = evaluate(researcher, resnet_csv)
    b = evaluate(researcher, reference_csv("SimCLR"), name="SimCLR", filename="SimCLR.csv")
    c = client_for(researcher)
    r = c.get("/api/evaluation/compare/", {"a": a.pk, "b": b.pk}).json()
    assert r["factors"]["overall"]["difference"] == pytest.approx(
        a.primary["overall"]["accuracy"] - b.primary["overall"]["accuracy"], abs=1e-12
    )
    html = c.get("/evaluation/compare/", {"a": a.pk, "b": b.pk})
    assert html.status_code == 200 and "McNemar" in html.content.decode()
    assert c.get("/evaluation/compare/figure.png", {"a": a.pk, "b": b.pk})["Content-Type"] == "image/png"


def test_the_zoo_is_imported_once_and_its_groups_are_tested(ev, researcher):
    from evaluation import selectors, services
    from evaluation.models import ZooModel

    assert services.zoo_import() == 15050 and services.zoo_import() == 0
    assert ZooModel.objects.filter(which_factor="top", correctness="class").count() == 2506
    tests = selectors.group_tests(selectors.zoo_context(ev))
    assert tests["texture"]["groups"] >= 5 and 0 <= tests["texture"]["p_holm"] <= 1
    html = client_for(researcher).get(f"/evaluation/{ev.pk}/").content.decode()
    assert 'id="group-tests"' in html and "more accurate than" in html
