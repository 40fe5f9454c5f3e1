"""The stored quality report: the dashboard reads it in constant time and a worker refreshes it
when the data changed (issue 14)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from review import selectors, services
from review.models import QualitySnapshot
from review.services.quality import _json_safe, quality_filter_from_key, quality_filter_key, quality_watermark
from tests.conftest import client_for
from tests.review.conftest import answer, make_images

pytestmark = pytest.mark.embedded


def test_the_filter_key_round_trips():
    import datetime as dt

    flt = selectors.QualityFilter(dataset_id=3, campaign_id=None, date_from=dt.date(2026, 1, 2), date_to=None)
    assert quality_filter_key(flt) == "dataset_id=3&date_from=2026-01-02"
    assert quality_filter_from_key(quality_filter_key(flt)) == flt
    assert quality_filter_key(selectors.QualityFilter()) == ""
    with pytest.raises(ValueError, match="unknown"):
        quality_filter_from_key("annotator=1")


def test_report_json_has_no_nan_or_numpy_values():
    out = _json_safe({"a": np.float64("nan"), "b": [np.int64(3), (1.5, float("inf"))], "c": np.array([1, 2])})
    assert out == {"a": None, "b": [3, [1.5, None]], "c": [1, 2]}
    assert type(out["b"][0]) is int


def test_the_dashboard_reads_the_stored_report_and_recomputes_after_a_change(
    db, tmp_path, annotator, other_annotator, reviewer, settings
):
    """First view computes and stores; later views read it (the same queries with 4 or 40 answers);
    a new answer makes it stale, and the refresh brings it up to date."""
    imgs = make_images(tmp_path / "q", 20)
    for img in imgs[:2]:
        answer(img, annotator, ["pose"])
        answer(img, other_annotator, ["pose"])
    page = client_for(reviewer).get("/review/quality/")
    assert page.status_code == 200 and b"4 answers on 2 images" in page.content
    snap = QualitySnapshot.objects.get(key="")
    assert snap.report["n_answers"] == 4

    reader = client_for(reviewer)
    with CaptureQueriesContext(connection) as q_small:
        assert reader.get("/review/quality/").status_code == 200
    read = [q["sql"] for q in q_small.captured_queries if 'FROM "catalog_annotation"' in q["sql"]]
    assert not read, read
    assert QualitySnapshot.objects.get(key="").computed_at == snap.computed_at  # nothing recomputed

    for img in imgs[2:]:
        answer(img, annotator, ["color"])
        answer(img, other_annotator, [])
    assert QualitySnapshot.objects.get(key="").watermark != quality_watermark()
    page = reader.get("/review/quality/")
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # stale: shown at once, a worker is asked
        assert b"changed since" in page.content and b"4 answers on 2 images" in page.content
        services.quality_report_refresh(key="")  # what the worker does
        page = reader.get("/review/quality/")
    # (with eager tasks, the embedded default, the request itself recomputed it)
    assert b"40 answers on 20 images" in page.content and b"changed since" not in page.content
    with CaptureQueriesContext(connection) as q_big:
        assert reader.get("/review/quality/").status_code == 200
    assert len(q_big) == len(q_small)
    fresh = selectors.quality_report(selectors.QualityFilter())
    assert QualitySnapshot.objects.get(key="").report["factors"] == _json_safe(fresh["factors"])


@pytest.mark.postgres
def test_a_stale_report_is_shown_at_once_and_a_worker_brings_the_new_one(
    celery_worker, tmp_path, annotator, other_annotator, reviewer, settings
):
    settings.QUALITY_REPORT_REFRESH_SECONDS = 3600
    imgs = make_images(tmp_path / "w", 6)
    # Different answers: the worker's after-submit checks must not settle the image (a
    # consensus would move the watermark under the first view).
    answer(imgs[0], annotator, ["pose"])
    answer(imgs[0], other_annotator, ["color"])
    api = client_for(reviewer)
    first = api.get("/api/review/quality/").json()
    assert first["n_answers"] == 2 and first["stale"] is False and first["computed_at"]

    for img in imgs[1:]:
        answer(img, annotator, ["color"])
    QualitySnapshot.objects.update(refresh_requested_at=None)
    stale = api.get("/api/review/quality/").json()
    # The old one, marked stale, unless the worker was already done (it may also have cleared
    # refresh_requested_at before we could read it: only the new report itself is waited for).
    assert (stale["n_answers"], stale["stale"]) in ((2, True), (7, False))
    assert api.get("/review/quality/").status_code == 200
    deadline = time.monotonic() + 30
    while QualitySnapshot.objects.get(key="").report["n_answers"] != 7:
        assert time.monotonic() < deadline, "the worker did not refresh the report"
        time.sleep(0.2)
    snap = QualitySnapshot.objects.get(key="")
    assert snap.refresh_requested_at is None
    now = api.get("/api/review/quality/").json()
    assert now["n_answers"] == 7 and now["stale"] is False
    assert b"changed since" not in api.get("/review/quality/").content


@pytest.mark.postgres
def test_a_stale_report_asks_a_worker_once_per_interval(
    requires_broker, db, tmp_path, annotator, other_annotator, reviewer, settings
):
    """Without a worker running, views of a stale report ask once, then wait for the interval."""
    settings.QUALITY_REPORT_REFRESH_SECONDS = 3600
    imgs = make_images(tmp_path / "o", 3)
    answer(imgs[0], annotator, ["pose"])
    c = client_for(reviewer)
    c.get("/review/quality/")
    answer(imgs[1], other_annotator, ["pose"])
    page = c.get("/review/quality/")
    assert b"changed since" in page.content and b"being computed" in page.content
    asked = QualitySnapshot.objects.get(key="").refresh_requested_at
    assert asked is not None
    c.get("/review/quality/")
    assert QualitySnapshot.objects.get(key="").refresh_requested_at == asked
    assert QualitySnapshot.objects.get(key="").report["n_answers"] == 1  # nobody computed it
