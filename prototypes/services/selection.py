"""Writes of a run's selection (its Prototype rows): merge a model run's shard states, or select
straight from a predictions file (a run, its skips and its prototypes in one transaction)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset, Image, ImageClass
from infra.errors import Conflict, DomainError
from prototypes import engine
from prototypes.models import Prototype, PrototypeRun, PrototypeSkip, RunSource, RunStatus, ShardStatus
from prototypes.selectors import images_to_score
from prototypes.services.runs import mark_current


def store_selection(*, run: PrototypeRun, state: engine.TopKState) -> None:
    """Create the Prototype rows of a run from its merged state (caller holds the run's lock)."""
    selection = state.select(fill_incorrect=run.fill_incorrect)
    classes = {c.index: c.id for c in ImageClass.objects.filter(dataset=run.dataset_id)}
    keys = [s.key for chosen in selection.values() for s in chosen]
    image_ids = dict(Image.objects.filter(dataset=run.dataset_id, file_name__in=keys).values_list("file_name", "id"))
    rows = []
    for label, chosen in selection.items():
        if label not in classes:
            continue
        for rank, s in enumerate(chosen, start=1):
            rows.append(
                Prototype(
                    run=run,
                    image_class_id=classes[label],
                    image_id=image_ids[s.key],
                    rank=rank,
                    probability=s.prob,
                    true_class_probability=s.true_prob,
                    predicted_class=s.predicted,
                    filled=s.filled,
                )
            )
    Prototype.objects.bulk_create(rows)
    run.short_classes = {str(c): n for c, n in sorted(state.short_classes().items())}


def prototype_run_merge(*, run_id: int) -> PrototypeRun:
    """Merge the shards' top-k states (exact), store the prototypes, mark current if asked."""
    with transaction.atomic():
        run = PrototypeRun.objects.select_for_update().get(pk=run_id)
        if run.status == RunStatus.DONE:
            return run
        shards = list(run.shards.order_by("index"))
        if any(s.status != ShardStatus.DONE for s in shards):
            raise Conflict(f"Prototype run {run.pk} still has unfinished shards.")
        state = engine.TopKState(k=run.k)
        for s in shards:
            state.merge(engine.TopKState.from_dict(s.state))
        store_selection(run=run, state=state)
        run.images_scored = sum(s.scored for s in shards)
        run.images_skipped = sum(s.skipped for s in shards)
        conv: Counter = Counter()
        for s in shards:
            conv.update(s.conversions or {})
        run.conversions = dict(conv)
        run.skipped_reasons = dict(Counter(engine.reason_kind(r) for r in run.skips.values_list("reason", flat=True)))
        run.wall_s = sum(s.wall_s or 0.0 for s in shards)
        run.images_per_s = run.images_scored / run.wall_s if run.wall_s else None
        run.images_done = run.images_total
        run.status = RunStatus.DONE
        run.finished_at = timezone.now()
        if run.make_current:
            mark_current(run=run)
        run.save()
        return run


@transaction.atomic
def prototype_run_from_predictions(
    *,
    dataset: Dataset,
    path: str,
    k: int = engine.DEFAULT_K,
    fill_incorrect: bool = False,
    split: str = "",
    make_current: bool = True,
    created_by: Any = None,
) -> PrototypeRun:
    """Select prototypes from a predictions CSV (file_name,predicted_class,predicted_probability)."""
    if k < 1:
        raise DomainError("k must be at least 1.", field="k")
    p = Path(path)
    if not p.is_file():
        raise DomainError(f"--predictions {path}: no such file.", field="predictions")
    if fill_incorrect and not engine.predictions_have_true_prob(p):
        raise DomainError(
            f"--fill-incorrect ranks incorrect images by the true class's probability, which {p.name} lacks "
            f"(column {engine.TRUE_PROB_COLUMN}); export predictions with --export-predictions to get it.",
            field="fill_incorrect",
        )
    qs = images_to_score(dataset=dataset, split=split) if split else Image.objects.filter(dataset=dataset)
    labels = dict(qs.values_list("file_name", "image_class__index").iterator(chunk_size=5000))
    if not labels:
        raise DomainError(f"Dataset {dataset.slug} has no images.", code="no_images")
    t0 = time.perf_counter()
    try:
        state, skipped = engine.state_from_predictions(engine.read_predictions(p), labels, k=k)
    except engine.EngineError as exc:
        raise DomainError(str(exc), field="predictions")
    except (UnicodeDecodeError, OSError) as exc:
        raise DomainError(f"--predictions {path} cannot be read: {exc}", field="predictions")
    scored = sum(state.scored.values())
    if scored == 0:
        raise DomainError(f"{p.name} has no usable row for dataset {dataset.slug}.", field="predictions")
    wall = time.perf_counter() - t0
    run = PrototypeRun.objects.create(
        dataset=dataset,
        source=RunSource.PREDICTIONS,
        status=RunStatus.RUNNING,
        predictions_file=str(p),
        k=k,
        fill_incorrect=fill_incorrect,
        split=split,
        make_current=make_current,
        created_by=created_by,
        images_total=scored + len(skipped),
        images_done=scored + len(skipped),
        images_scored=scored,
        images_skipped=len(skipped),
        weights_id=f"predictions:{p.name}",
        weights_sha256=engine.file_sha256(p),
        library_versions=engine.library_versions(),
        wall_s=wall,
        images_per_s=scored / wall if wall else None,
        started_at=timezone.now(),
    )
    image_ids = dict(
        Image.objects.filter(dataset=dataset, file_name__in=[s.key for s in skipped]).values_list("file_name", "id")
    )
    PrototypeSkip.objects.bulk_create(
        [
            PrototypeSkip(run=run, image_id=image_ids.get(s.key), file_name=s.key[:255], reason=s.reason[:1000])
            for s in skipped
        ],
        ignore_conflicts=True,
    )
    run.skipped_reasons = dict(Counter(engine.reason_kind(s.reason) for s in skipped))
    store_selection(run=run, state=state)
    run.status = RunStatus.DONE
    run.finished_at = timezone.now()
    if make_current:
        mark_current(run=run)
    run.save()
    return run
