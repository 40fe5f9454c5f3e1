import time

import pytest

from catalog.errors import DomainError
from catalog.models import Dataset
from curation import services
from curation.models import CuratedImage, CurationRun

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


@pytest.mark.django_db
def test_empty_dataset_is_refused_with_a_clear_message():
    Dataset.objects.create(slug="empty", name="Empty")
    with pytest.raises(DomainError, match="Nothing to curate: dataset empty has no final annotation"):
        services.curation_start(dataset_slug="empty")
    assert CurationRun.objects.count() == 0
