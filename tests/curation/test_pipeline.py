import time

import pytest
from django.conf import settings

from catalog.models import Dataset
from curation import services
from curation.models import CuratedImage, CurationRun
from infra.errors import DomainError

from .conftest import TEXTS, make_dataset


def wait_for(run: CurationRun, timeout: float = 60.0) -> CurationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in ("done", "failed"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run.id} still {run.status} after {timeout}s ({run.processed}/{run.total})")


def test_pipeline_through_a_real_worker_stores_every_result_and_figures(celery_worker, maintainer):
    ds = make_dataset()
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=3, user=maintainer)
    assert run.chunks.count() == 3
    run = wait_for(run)
    assert run.status == "done", run.error
    assert run.processed == run.total == len(TEXTS)
    assert CuratedImage.objects.filter(run=run).count() == len(TEXTS)
    assert {f.key for f in run.figures.all()} == {"factor_counts", "factors_per_image", "spearman"}
    assert run.stats["selection"]["single_factor"] == 1
    assert run.stats["selection"]["text_without_vector"] == 1  # "xqzt vvbn" has no word vector


def test_learned2_run_through_a_real_worker_chooses_among_selected_factors(celery_worker, maintainer):
    from catalog.factors import FACTOR_KEYS
    from curation import selector_training

    ds = make_dataset()
    model = selector_training.selector_model_train_learned2(dataset_slug=ds.slug)
    run = services.curation_start(dataset_slug=ds.slug, selector="learned", chunk_size=3, user=maintainer)
    run = wait_for(run, timeout=90)
    assert run.status == "done", run.error
    assert run.selector_model_id == model.id and run.params["selector_version"] == "learned-2"
    for r in CuratedImage.objects.filter(run=run):
        selected = [k for k in FACTOR_KEYS if getattr(r, k)]
        assert (r.top_factor in selected) if selected else r.top_factor == ""
    assert run.stats["agreement_with_reference"]["trained_on"]["splits"] == ["train"]


def test_a_starting_worker_finalises_a_run_whose_chunks_are_stored_but_not_finalised(celery_worker_process, maintainer):
    """A worker killed while it finalised (or between a chunk's result and the chord's callback)
    takes the callback with it and the run stays `running` with every chunk stored (seen in the
    rehearsal). The supervisor's replacement worker finalises it when it starts."""
    from config.celery import app
    from curation.models import CurationChunk

    ds = make_dataset()
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=3, user=maintainer)
    with app.connection_for_write() as conn:  # the run's messages are gone with the dead worker
        for queue in ("default", "curation", "gpu", "exports"):
            conn.default_channel.queue_purge(queue)
        assert not any(conn.default_channel.client.llen(q) for q in ("default", "curation"))
    for index in services.curation_run_pending_chunks(run_id=run.id):
        services.curation_chunk_process(run_id=run.id, index=index)
    run.refresh_from_db()
    assert run.status == "running" and not run.chunks.exclude(status=CurationChunk.Status.DONE).exists()
    assert services.curation_runs_awaiting_finalise() == [run.id]
    celery_worker_process()
    run = wait_for(run, timeout=90)
    assert run.status == "done", run.error
    assert run.processed == run.total == len(TEXTS) and run.figures.count() == 3
    assert services.curation_runs_awaiting_finalise() == []


@pytest.mark.django_db
def test_empty_dataset_is_refused_with_a_clear_message():
    Dataset.objects.create(slug="empty", name="Empty")
    with pytest.raises(DomainError, match="Nothing to curate: dataset empty has no final annotation"):
        services.curation_start(dataset_slug="empty")
    assert CurationRun.objects.count() == 0


def test_chunk_retries_exhausted_ends_the_run_failed_with_the_reason(celery_worker, maintainer):
    ds = make_dataset()
    model = services.selector_model_train(dataset_slug=ds.slug, text_field="both", factor_text="key")
    # The stored model file disappears before the workers read it: every attempt fails.
    (settings.MEDIA_ROOT / model.path).unlink()
    services._learned.cache_clear()
    run = services.curation_start(
        dataset_slug=ds.slug, selector="learned", learned_version="learned-1", chunk_size=4, user=maintainer
    )
    run = wait_for(run, timeout=90)
    assert run.status == "failed"
    assert "failed after 4 attempts" in run.error and "FileNotFoundError" in run.error
    assert run.chunks.filter(status="done").count() == 0
    assert not run.stats and run.figures.count() == 0


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_embedded_default_runs_the_whole_chord_eagerly_on_commit():
    if settings.CELERY_BROKER_URL:
        pytest.skip("only the embedded default (no broker) runs tasks eagerly")
    ds = make_dataset()
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=3)
    run.refresh_from_db()
    assert run.status == "done" and run.processed == run.total == len(TEXTS)
    assert run.figures.count() == 3
