"""The Celery side: shard tasks and the merge on the gpu queue through real workers on Redis,
and resuming a run whose worker was killed mid-run."""

from __future__ import annotations

import signal
import time

import pytest
from django.db import transaction

from prototypes import services
from prototypes.models import PrototypeRun, ShardStatus
from tests.prototypes.conftest import compute_tiny

TINY_RUN = dict(
    model_name="resnet18", weights="none", seed=0, image_size=32, batch_size=4, num_workers=0, fill_incorrect=True
)


def _wait(predicate, timeout: float = 90.0, every: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def _selection(run: PrototypeRun) -> list[tuple[int, int, str, bool]]:
    return list(
        run.prototypes.order_by("image_class__index", "rank").values_list(
            "image_class__index", "rank", "image__file_name", "filled"
        )
    )


def _one_pass(ds) -> list:
    return _selection(compute_tiny(ds, "--fill-incorrect", "--no-current"))


def test_sharded_run_completes_through_a_real_worker_on_the_gpu_queue(celery_worker, dataset_factory):
    ds = dataset_factory(n_images=12, n_classes=3)
    with transaction.atomic():
        run = services.prototype_run_create(dataset=ds, shards=3, **TINY_RUN)
    run = _wait(lambda: PrototypeRun.objects.filter(pk=run.pk, status="done").first())
    assert run.is_current and run.images_done == run.images_total == 12 and run.images_scored == 12
    assert run.shards.filter(status=ShardStatus.DONE, attempts=1).count() == 3
    assert _selection(run) == _one_pass(ds)


@pytest.mark.slow
def test_run_resumes_after_its_worker_is_killed_without_redoing_finished_shards(celery_worker_process, dataset_factory):
    ds = dataset_factory(n_images=24, n_classes=3)
    expected = _one_pass(ds)
    with transaction.atomic():
        run = services.prototype_run_create(dataset=ds, shards=6, **TINY_RUN)
    worker = celery_worker_process(queues="gpu")
    _wait(lambda: run.shards.filter(status=ShardStatus.DONE).exists(), every=0.01)
    worker.send_signal(signal.SIGKILL)  # a crash: no clean shutdown, the running shard stays "running"
    worker.wait(timeout=10)
    done_before = {s.pk: (s.attempts, s.finished_at) for s in run.shards.filter(status=ShardStatus.DONE)}
    assert 0 < len(done_before) < 6, "the kill must land mid-run"

    with transaction.atomic():
        todo = services.prototype_run_resume(run=run)
    assert set(todo).isdisjoint(done_before)
    celery_worker_process(queues="gpu")
    run = _wait(lambda: PrototypeRun.objects.filter(pk=run.pk, status="done").first())

    for s in run.shards.all():
        if s.pk in done_before:
            assert (s.attempts, s.finished_at) == done_before[s.pk], "a finished shard was redone"
    assert run.images_done == run.images_total == 24 and run.images_scored == 24
    assert _selection(run) == expected
