"""Starting a prototype run from the page: an uploaded predictions file, or a model whose shards
go to the gpu queue (eager here), and the shards' progress on the run's page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from prototypes.models import PrototypeRun
from tests.conftest import client_for

pytestmark = pytest.mark.embedded


def _post(user, data: dict):
    c = client_for(user)
    c.get(reverse("prototypes:runs"))
    return c.post(reverse("prototypes:runs"), {**data, "csrfmiddlewaretoken": c.cookies["csrftoken"].value})


def test_an_uploaded_predictions_file_starts_a_run(db, dataset_factory, maintainer):
    ds = dataset_factory(n_images=6, n_classes=3)
    rows = ["file_name,predicted_class,predicted_probability"]
    for img in ds.images.select_related("image_class"):
        rows.append(f"{img.file_name},{img.image_class.index},0.9")
    upload = SimpleUploadedFile("preds.csv", "\n".join(rows).encode(), content_type="text/csv")
    r = _post(maintainer, {"dataset": ds.slug, "source": "predictions", "predictions": upload, "shards": 1, "k": 1})
    run = PrototypeRun.objects.get(dataset=ds)
    assert r.status_code == 302 and r["Location"] == reverse("prototypes:run", args=[run.pk])
    assert run.source == "predictions" and run.status == "done"


def test_a_model_run_with_shards_shows_their_progress(db, dataset_factory, maintainer):
    ds = dataset_factory(n_images=6, n_classes=3)
    r = _post(
        maintainer,
        {"dataset": ds.slug, "source": "model", "model_name": "resnet18", "weights": "none", "shards": 2, "k": 1},
    )
    run = PrototypeRun.objects.get(dataset=ds)
    assert r.status_code == 302 and run.shards.count() == 2
    page = client_for(maintainer).get(reverse("prototypes:run", args=[run.pk])).content.decode()
    assert "Shards" in page and "<progress" in page


def test_a_predictions_run_without_its_file_is_refused_and_stores_nothing(db, dataset_factory, maintainer):
    ds = dataset_factory(n_images=3, n_classes=3)
    r = _post(maintainer, {"dataset": ds.slug, "source": "predictions", "shards": 1, "k": 1})
    assert r.status_code == 400 and "Upload the predictions file" in r.content.decode()
    assert not PrototypeRun.objects.exists()


def test_only_maintainers_start_runs(db, dataset_factory, annotator):
    ds = dataset_factory(n_images=3, n_classes=3)
    c = client_for(annotator)
    assert c.get(reverse("prototypes:runs")).status_code == 403
    assert c.post(reverse("prototypes:runs"), {"dataset": ds.slug}).status_code == 403
    assert not PrototypeRun.objects.exists()
