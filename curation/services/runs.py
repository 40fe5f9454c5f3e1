"""Writes of curation runs: start (plan the chunks), list pending chunks, fail, restart.

The pipeline (curation/tasks.py) is a Celery chord: one task per chunk of final annotations,
then one finalise task. Every function here is safe to call twice with the same arguments (a
retried or redelivered task), because each writes its results and its "done" mark in one
transaction. Services enqueue tasks by name (infra.enqueue) and never import curation.tasks.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotator.models import Campaign
from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset, Split
from curation import topfactor
from curation.models import CurationChunk, CurationRun
from curation.services.selector_models import SELECTORS, selector_params
from infra.embeddings import ModelUnavailable, describe_model
from infra.enqueue import enqueue_task
from infra.errors import Conflict, DomainError, NotFound
from review.selectors import final_annotations

# 5,000 rows per chunk: large enough that spaCy's nlp.pipe batches and one bulk insert amortise
# their overhead, small enough that 60k annotations make ~12 tasks that two workers share and a
# retried chunk redoes little work.
DEFAULT_CHUNK_SIZE = 5000
MAX_CHUNK_SIZE = 50_000


class RunNotReady(Exception):
    """Finalise was called while some chunks are still pending (a redelivered chunk raced the chord)."""


# --- start ----------------------------------------------------------------------------------
def _scope_campaign(*, dataset: Dataset, campaign_id: int | None) -> tuple[Campaign | None, QuerySet | None]:
    """(the campaign, its image ids as a subquery), or (None, None) for a run over the dataset."""
    if campaign_id is None:
        return None, None
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} does not exist.", field="campaign_id")
    if campaign.dataset_id != dataset.id:
        raise DomainError(f"Campaign {campaign_id} belongs to another dataset.", field="campaign_id")
    # A campaign lists its images through CampaignItem rows (`items`).
    return campaign, campaign.items.values("image_id")


def curation_start(
    *,
    dataset_slug: str,
    split: str = "",
    campaign_id: int | None = None,
    selector: str = "paper",
    text_field: str = topfactor.PAPER_DEFAULT_TEXT,
    factor_text: str = topfactor.PAPER_DEFAULT_FACTOR_TEXT,
    selector_model_id: int | None = None,
    learned_version: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    spacy_model: str | None = None,
    user=None,
    enqueue: bool = True,
) -> CurationRun:
    """Create a run over the final annotations of a dataset (or one split, or one campaign) and enqueue it.

    The final annotations are frozen into chunks here, in the same transaction as the run, so
    that the run's total is known at once and retried chunks see the same rows.
    """
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise NotFound(f"No dataset with slug {dataset_slug!r}.", field="dataset")
    if split and split not in Split.values:
        raise DomainError(f"split must be one of {list(Split.values)} or empty, not {split!r}.", field="split")
    if selector not in SELECTORS:
        raise DomainError(f"selector must be one of {list(SELECTORS)}, not {selector!r}.", field="selector")
    if text_field not in topfactor.TEXT_FIELDS:
        raise DomainError(f"text_field must be one of {list(topfactor.TEXT_FIELDS)}.", field="text_field")
    if factor_text not in topfactor.FACTOR_TEXTS:
        raise DomainError(f"factor_text must be one of {list(topfactor.FACTOR_TEXTS)}.", field="factor_text")
    if not (1 <= int(chunk_size) <= MAX_CHUNK_SIZE):
        raise DomainError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}.", field="chunk_size")
    model_row, text_field, factor_text, selector_info = selector_params(
        selector=selector,
        text_field=text_field,
        factor_text=factor_text,
        selector_model_id=selector_model_id,
        learned_version=learned_version,
    )
    spacy_name = spacy_model or settings.SPACY_MODEL
    try:
        info = describe_model(spacy_name)
    except ModelUnavailable as exc:
        raise DomainError(str(exc), field="spacy_model", status=503, code="unavailable")
    campaign, image_ids = _scope_campaign(dataset=dataset, campaign_id=campaign_id)

    with transaction.atomic():
        ids = list(
            final_annotations(dataset_id=dataset.id, split=split or None, image_ids=image_ids).values_list(
                "id", flat=True
            )
        )
        if not ids:
            scope = (
                f"campaign {campaign_id}"
                if campaign_id
                else f"dataset {dataset.slug}" + (f" ({split})" if split else "")
            )
            # The request is fine; the data is not there yet (409, like any state conflict).
            raise Conflict(
                f"Nothing to curate: {scope} has no final annotation yet (an accepted, adjudicated or imported one).",
                code="empty",
            )
        params = {
            **selector_info,
            "spacy_model": spacy_name,
            "spacy_model_info": info,
            "text_field": text_field,
            "factor_text": factor_text,
            "factor_texts": {k: topfactor.factor_text(k, factor_text) for k in FACTOR_KEYS},
            "chunk_size": int(chunk_size),
        }
        run = CurationRun.objects.create(
            dataset=dataset,
            split=split,
            campaign=campaign,
            selector_model=model_row,
            params=params,
            total=len(ids),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        CurationChunk.objects.bulk_create(
            CurationChunk(
                run=run, index=i, annotation_ids=ids[lo : lo + chunk_size], size=len(ids[lo : lo + chunk_size])
            )
            for i, lo in enumerate(range(0, len(ids), chunk_size))
        )
        if enqueue:
            enqueue_task("curation.launch", run.id, long_running=True)
    return run


def curation_runs_awaiting_finalise() -> list[int]:
    """Runs still running whose every chunk is stored: a worker killed while it finalised, or
    between a chunk's result and the chord's callback, can leave one so (the callback message
    is then gone with it). Finalising again is safe: it re-checks under the run's lock."""
    return list(
        CurationRun.objects.filter(status=CurationRun.Status.RUNNING)
        .exclude(chunks__status__in=[s for s in CurationChunk.Status.values if s != CurationChunk.Status.DONE])
        .filter(chunks__isnull=False)
        .distinct()
        .order_by("id")
        .values_list("id", flat=True)
    )


def curation_run_pending_chunks(*, run_id: int) -> list[int]:
    """Indexes of the run's chunks that are not done yet, in order."""
    return list(
        CurationChunk.objects.filter(run_id=run_id)
        .exclude(status=CurationChunk.Status.DONE)
        .order_by("index")
        .values_list("index", flat=True)
    )


def curation_run_fail(*, run_id: int, reason: str, chunk_index: int | None = None) -> None:
    """Mark a run failed with its reason (a chunk's retries are exhausted, or finalise failed)."""
    with transaction.atomic():
        run = CurationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status == CurationRun.Status.DONE:
            return
        if chunk_index is not None:
            CurationChunk.objects.filter(run_id=run_id, index=chunk_index).exclude(status="done").update(
                status=CurationChunk.Status.FAILED, error=reason[:2000]
            )
        run.status = CurationRun.Status.FAILED
        run.error = (reason or "unknown error")[:4000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])


def curation_run_restart(*, run_id: int) -> CurationRun:
    """Re-enqueue a failed or stuck run: chunks already done are kept, the others are redone."""
    with transaction.atomic():
        run = CurationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise NotFound(f"Curation run {run_id} does not exist.")
        if run.status == CurationRun.Status.DONE:
            raise Conflict(f"Curation run {run_id} is already done.")
        run.chunks.exclude(status=CurationChunk.Status.DONE).update(status=CurationChunk.Status.PENDING, error="")
        run.status = CurationRun.Status.RUNNING
        run.error = ""
        run.finished_at = None
        run.save(update_fields=["status", "error", "finished_at"])
        enqueue_task("curation.launch", run.id, long_running=True)
    return run
