"""Reads of the curation app (querysets and JSON-safe views of runs)."""

from __future__ import annotations

from django.db.models import QuerySet

from catalog.models import Dataset, ImageClass
from curation.models import CurationRun, SelectorModel


def curation_runs() -> QuerySet[CurationRun]:
    return CurationRun.objects.select_related("dataset", "selector_model", "created_by").order_by("-created_at", "-id")


def curation_run_get(run_id: int) -> CurationRun | None:
    return curation_runs().filter(pk=run_id).first()


def run_progress(run: CurationRun) -> dict:
    """What the progress poller and the API show: status, counts, chunk progress, error."""
    chunks = list(run.chunks.values_list("status", flat=True))
    return {
        "id": run.id,
        "dataset": run.dataset.slug,
        "split": run.split,
        "campaign_id": run.campaign_id,
        "status": run.status,
        "total": run.total,
        "processed": run.processed,
        "progress": round(run.progress, 4),
        "chunks": {"total": len(chunks), "done": chunks.count("done"), "failed": chunks.count("failed")},
        "error": run.error,
        "params": run.params,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "figures": [{"key": f.key, "title": f.title} for f in run.figures.all()] if run.status == "done" else [],
    }


def image_class_get(class_id: int) -> ImageClass | None:
    return ImageClass.objects.filter(pk=class_id).first()


def selector_models() -> QuerySet[SelectorModel]:
    return SelectorModel.objects.order_by("name", "-version")


def datasets() -> QuerySet[Dataset]:
    return Dataset.objects.order_by("slug")


def dataset_classes(dataset: Dataset) -> QuerySet[ImageClass]:
    return ImageClass.objects.filter(dataset=dataset).order_by("index")


def top_correlations(stats: dict, kind: str, n: int = 15) -> list[dict]:
    rows = stats.get("spearman", {}).get(kind, [])
    return sorted(rows, key=lambda r: -abs(r["rho"]))[:n]
