"""The quality report kept computed (QualitySnapshot), so that the dashboard opens in constant time.

The report reads every answer and bootstraps its intervals: 50 ms at 3,000 images, 2.5 s at
60,000 half done. The dashboard, its CSV and the API read the stored report of their filter
and say when it was computed. When answers, review decisions or gold answers changed since (a
watermark of three primary-key maxima, read in constant time), the page still answers at once
with the stored report, marked as older than the data, and asks a worker for a new one:
stale-while-revalidate, with at most one request per filter per QUALITY_REPORT_REFRESH_SECONDS.
Only the first view of a filter computes in the request (nothing is stored yet); in the
embedded default (eager tasks) the refresh runs in the request as well.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from infra.enqueue import enqueue_task
from review.models import QualitySnapshot, ReviewDecision

REFRESH_TASK = "review.quality_report_refresh"
_FILTER_FIELDS = ("dataset_id", "campaign_id", "date_from", "date_to")


@dataclass(frozen=True)
class StoredReport:
    report: dict
    computed_at: dt.datetime
    seconds: float  # how long the computation took
    stale: bool  # answers, decisions or gold answers changed since
    refreshing: bool  # a worker has been asked for a newer one

    def as_json(self) -> dict:
        return {
            **self.report,
            "computed_at": self.computed_at.isoformat(),
            "compute_seconds": self.seconds,
            "stale": self.stale,
        }


def quality_filter_key(flt) -> str:
    """The filter as a stable string (the snapshot's key): `dataset_id=1&date_from=2026-01-01`."""
    return urlencode([(f, str(getattr(flt, f))) for f in _FILTER_FIELDS if getattr(flt, f) is not None])


def quality_filter_from_key(key: str):
    from review.selectors import QualityFilter

    values = dict(parse_qsl(key))
    unknown = set(values) - set(_FILTER_FIELDS)
    if unknown:
        raise ValueError(f"unknown quality filter field(s) {sorted(unknown)} in {key!r}")
    return QualityFilter(
        dataset_id=int(values["dataset_id"]) if "dataset_id" in values else None,
        campaign_id=int(values["campaign_id"]) if "campaign_id" in values else None,
        date_from=dt.date.fromisoformat(values["date_from"]) if "date_from" in values else None,
        date_to=dt.date.fromisoformat(values["date_to"]) if "date_to" in values else None,
    )


def quality_watermark() -> str:
    """What the report depends on, as of now: the newest annotation version (every creation and
    edit of an answer, a consensus or a supersession appends one), review decision and gold
    answer. Three index lookups, whatever the size of the tables."""
    from annotator.models import GoldResponse
    from catalog.models import AnnotationVersion

    marks = [m.objects.aggregate(m=Max("id"))["m"] or 0 for m in (AnnotationVersion, ReviewDecision, GoldResponse)]
    return ":".join(map(str, marks))


def _not_older(mark: str, than: str) -> bool:
    a, b = ([int(x) for x in m.split(":")] for m in (mark, than))
    return len(a) == len(b) and all(x >= y for x, y in zip(a, b, strict=True))


def _json_safe(value):
    """The report as plain JSON: numpy scalars and arrays become numbers and lists, NaN None
    (PostgreSQL's jsonb refuses NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def quality_report_refresh(*, key: str) -> QualitySnapshot:
    """Compute the report of the filter `key` now and store it (the worker's job).

    The watermark is read before the answers: a write that lands during the computation leaves
    the new snapshot older than the data, so the next view asks again (never the other way
    round). A computation that finishes after a newer one does not overwrite it.
    """
    from review.selectors import quality_report

    flt = quality_filter_from_key(key)
    mark = quality_watermark()
    t0 = time.perf_counter()
    report = json.loads(json.dumps(_json_safe(quality_report(flt)), allow_nan=False))
    seconds = round(time.perf_counter() - t0, 3)
    values = {"report": report, "watermark": mark, "computed_at": timezone.now(), "seconds": seconds}
    with transaction.atomic():
        snap = QualitySnapshot.objects.select_for_update().filter(key=key).first()
        if snap is None:
            try:
                with transaction.atomic():
                    return QualitySnapshot.objects.create(key=key, refresh_requested_at=None, **values)
            except IntegrityError:  # a concurrent first computation stored it first
                snap = QualitySnapshot.objects.select_for_update().get(key=key)
        if _not_older(mark, snap.watermark):
            for k, v in values.items():
                setattr(snap, k, v)
            snap.refresh_requested_at = None
            snap.save()
        return snap


def _ask_for_refresh(snap: QualitySnapshot) -> bool:
    """Ask a worker for a newer report, once per QUALITY_REPORT_REFRESH_SECONDS per filter.

    The conditional UPDATE is the lock: of several views at once, one asks."""
    now = timezone.now()
    due = now - dt.timedelta(seconds=settings.QUALITY_REPORT_REFRESH_SECONDS)
    asked = QualitySnapshot.objects.filter(
        Q(refresh_requested_at__isnull=True) | Q(refresh_requested_at__lt=due), pk=snap.pk
    ).update(refresh_requested_at=now)
    if asked:
        enqueue_task(REFRESH_TASK, snap.key)
    return True


def quality_report_current(flt) -> StoredReport:
    """The stored report of this filter, with its age; a newer one is asked for when the data
    changed since (see the module's docstring)."""
    key = quality_filter_key(flt)
    snap = QualitySnapshot.objects.filter(key=key).first()
    if snap is None:
        snap = quality_report_refresh(key=key)
    mark = quality_watermark()
    refreshing = False
    if snap.watermark != mark:
        if current_app.conf.task_always_eager:  # no worker (the embedded default): compute here
            snap = quality_report_refresh(key=key)
        else:
            refreshing = _ask_for_refresh(snap)
    return StoredReport(
        report=snap.report,
        computed_at=snap.computed_at,
        seconds=snap.seconds,
        stale=snap.watermark != mark,
        refreshing=refreshing,
    )
