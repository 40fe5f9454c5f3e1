"""A worker killed (SIGKILL) in the middle of a run: another worker finishes it, same result."""

import os
import signal
import time

from catalog.models import Dataset
from curation import services
from curation.models import CuratedImage, CurationRun

from .conftest import make_dataset

# The broker hands an unacknowledged message to another worker only after its visibility
# timeout; 2 s instead of an hour keeps the test short. A new worker restores such messages
# when it starts.
VISIBILITY_S = 2


def results(run: CurationRun) -> list[tuple]:
    return list(
        CuratedImage.objects.filter(run=run).order_by("image_id").values_list("image_id", "top_factor", "meta_label")
    )


def test_run_survives_a_worker_killed_mid_run_and_equals_an_uninterrupted_run(celery_worker_process):
    ds = make_dataset(copies=3)
    env = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S)}
    first = celery_worker_process(queues="curation", extra_env={**env, "CURATION_CHUNK_THROTTLE_S": "0.4"})
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=2)
    n_chunks = run.chunks.count()
    assert n_chunks == 12

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.processed >= 4:
            break
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    run.refresh_from_db()
    assert run.status == "running" and 0 < run.processed < run.total, (run.status, run.processed)

    time.sleep(VISIBILITY_S + 0.5)
    celery_worker_process(queues="curation", extra_env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and run.status not in ("done", "failed"):
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.status == "done", (run.status, run.error, run.processed)
    assert run.processed == run.total == 24
    assert run.chunks.filter(status="done").count() == n_chunks

    # The same run computed without interruption, in this process.
    again = services.curation_start(dataset_slug=Dataset.objects.get(pk=ds.pk).slug, chunk_size=2, enqueue=False)
    again = services.curation_run_execute(run_id=again.id)
    assert again.status == "done"
    assert results(run) == results(again)
    assert run.stats["factor_counts"] == again.stats["factor_counts"]
