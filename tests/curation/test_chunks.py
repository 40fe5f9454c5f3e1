"""Chunks are idempotent, and a run is never done with part of its results."""

import pytest

from curation import services
from curation.models import CuratedImage, CurationChunk
from infra.errors import Conflict

from .conftest import tiny_dataset  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_processing_a_chunk_twice_stores_its_results_once(tiny_dataset):  # noqa: F811
    run = services.curation_start(dataset_slug=tiny_dataset.slug, chunk_size=3, enqueue=False)
    assert services.curation_chunk_process(run_id=run.id, index=0) == 3
    assert services.curation_chunk_process(run_id=run.id, index=0) == 0  # redelivered: already done
    # A chunk whose "done" mark was lost (crash between commit and ack) redoes its rows in place.
    CurationChunk.objects.filter(run=run, index=0).update(status="pending")
    before = list(CuratedImage.objects.filter(run=run).values_list("image_id", "top_factor"))
    assert services.curation_chunk_process(run_id=run.id, index=0) == 3
    assert list(CuratedImage.objects.filter(run=run).values_list("image_id", "top_factor")) == before
    run.refresh_from_db()
    assert run.processed == 3


def test_finalise_refuses_while_chunks_are_pending_and_run_stays_running(tiny_dataset):  # noqa: F811
    run = services.curation_start(dataset_slug=tiny_dataset.slug, chunk_size=3, enqueue=False)
    services.curation_chunk_process(run_id=run.id, index=0)
    with pytest.raises(services.RunNotReady):
        services.curation_finalise(run_id=run.id)
    run.refresh_from_db()
    assert run.status == "running" and not run.stats and run.figures.count() == 0


def test_failed_run_keeps_its_reason_and_a_restart_redoes_only_missing_chunks(tiny_dataset):  # noqa: F811
    run = services.curation_start(dataset_slug=tiny_dataset.slug, chunk_size=3, enqueue=False)
    services.curation_chunk_process(run_id=run.id, index=0)
    services.curation_run_fail(run_id=run.id, chunk_index=1, reason="chunk 1 failed after 4 attempts: OperationalError")
    run.refresh_from_db()
    assert run.status == "failed" and "chunk 1 failed" in run.error
    assert services.curation_chunk_process(run_id=run.id, index=2) == 0  # a failed run takes no more work
    services.curation_run_restart(run_id=run.id)
    run = services.curation_run_execute(run_id=run.id)
    assert run.status == "done" and run.processed == run.total == 8
    with pytest.raises(Conflict):
        services.curation_run_restart(run_id=run.id)
