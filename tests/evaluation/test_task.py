"""Many models at once on a real Celery worker (PostgreSQL + Redis): progress on the batch row."""

from __future__ import annotations

import time

from catalog.models import Dataset
from evaluation import services
from evaluation.models import Evaluation, EvaluationBatch
from tests.conftest import _make_user
from tests.evaluation.helpers import reference_csv


def test_a_batch_runs_on_the_worker_with_progress(celery_worker, django_user_model):
    Dataset.objects.create(slug="imagenet-x", name="ImageNet-X")
    user = _make_user(django_user_model, "res", "researcher")
    ids = [
        services.evaluation_create(owner=user, name=m, dataset_slug="imagenet-x", data=reference_csv(m),
                                   filename=f"{m}.csv", label_source="toolkit", enqueue=False).pk
        for m in ("ResNet50", "ViT", "DINO", "SimCLR")
    ]  # fmt: skip
    batch = services.batch_start(owner=user, evaluation_ids=ids)
    for _ in range(240):
        batch.refresh_from_db()
        if batch.status == "done":
            break
        time.sleep(0.5)
    assert (batch.status, batch.processed, batch.total) == ("done", 4, 4)
    assert set(Evaluation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"done"}
    assert EvaluationBatch.objects.get(pk=batch.pk).finished_at is not None
    rn = Evaluation.objects.get(name="ResNet50")
    assert round(rn.primary["factors"]["texture"]["error_ratio"], 2) == 2.39
