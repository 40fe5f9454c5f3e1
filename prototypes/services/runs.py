"""Writes of a PrototypeRun row: create a model run (with its shard rows), resume it, fail it,
make a finished run the dataset's current one; and the by-name enqueueing of its tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset
from infra.enqueue import enqueue_task, enqueue_tasks
from infra.errors import Conflict, DomainError
from prototypes import engine
from prototypes.models import PrototypeRun, PrototypeShard, RunSource, RunStatus, ShardStatus
from prototypes.selectors import images_to_score


def _validate_model(*, model_name: str, weights: str, checkpoint: str) -> None:
    """Cheap checks before a run exists (names, file present); loading happens in the shard."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(model_name)
    except Exception:
        raise DomainError(
            f"Unknown model {model_name!r}: give a torchvision classification model name.", field="model_name"
        )
    w = engine.normalize_weights_name(weights)
    if checkpoint:
        if not Path(checkpoint).is_file():
            raise DomainError(f"--checkpoint {checkpoint}: no such file.", field="checkpoint")
    elif w and w not in enum.__members__:
        raise DomainError(
            f"{model_name} has no weights {w!r}; available: {', '.join(enum.__members__)}, or none.", field="weights"
        )


@transaction.atomic
def prototype_run_create(
    *,
    dataset: Dataset,
    model_name: str = engine.DEFAULT_MODEL,
    weights: str = engine.DEFAULT_WEIGHTS,
    checkpoint: str = "",
    seed: int = 0,
    image_size: int | None = None,
    k: int = engine.DEFAULT_K,
    fill_incorrect: bool = False,
    split: str = "",
    shards: int = 1,
    device: str = "auto",
    batch_size: int | None = None,
    num_workers: int | None = None,
    dtype: str = "auto",
    decode: str = "auto",
    make_current: bool = True,
    created_by: Any = None,
    enqueue: bool = True,
) -> PrototypeRun:
    """Create a model run and its shards; with enqueue, the shard tasks go to the gpu queue on commit."""
    if k < 1:
        raise DomainError("k must be at least 1.", field="k")
    if shards < 1:
        raise DomainError("shards must be at least 1.", field="shards")
    if batch_size is not None and batch_size < 1:
        raise DomainError("batch size must be at least 1.", field="batch_size")
    _validate_model(model_name=model_name, weights=weights, checkpoint=checkpoint)
    images = images_to_score(dataset=dataset, split=split).order_by("id")
    total = images.count()
    if total == 0:
        raise DomainError(f"Dataset {dataset.slug} has no image files to score.", code="no_images")
    run = PrototypeRun.objects.create(
        dataset=dataset,
        source=RunSource.MODEL,
        model_name=model_name,
        weights="" if checkpoint else (engine.normalize_weights_name(weights) or "none"),
        checkpoint=checkpoint,
        seed=seed,
        image_size=image_size,
        k=k,
        fill_incorrect=fill_incorrect,
        split=split,
        options={
            "device": device,
            "batch_size": batch_size,
            "num_workers": num_workers,
            "dtype": dtype,
            "decode": decode,
            "shards": shards,
        },
        images_total=total,
        make_current=make_current,
        created_by=created_by,
    )
    shards = min(shards, total)
    size = -(-total // shards)
    for i in range(shards):
        lo = i * size
        hi = min(total, lo + size) - 1
        if lo > hi:
            break
        # Boundaries by position in id order: O(shards) small queries, never the whole id list.
        first = images.values_list("id", flat=True)[lo]
        last = images.values_list("id", flat=True)[hi]
        PrototypeShard.objects.create(
            run=run, index=i, first_image_id=first, last_image_id=last, images_total=hi - lo + 1
        )
    if enqueue:
        enqueue_shards(shard_ids=list(run.shards.values_list("id", flat=True)))
    return run


def enqueue_shards(*, shard_ids: list[int]) -> None:
    enqueue_tasks("prototypes.score_shard", ([sid] for sid in shard_ids))


@transaction.atomic
def prototype_run_resume(*, run: PrototypeRun, enqueue: bool = True) -> list[int]:
    """Re-enqueue the unfinished shards of a run whose workers are gone; finished shards stay.

    Call it once the workers that ran it are known to be dead (crash, deploy): a shard still
    marked running is reset to pending, its partial progress taken off the run row.
    """
    run = PrototypeRun.objects.select_for_update().get(pk=run.pk)
    if run.status == RunStatus.DONE:
        raise Conflict(f"Prototype run {run.pk} is already done.")
    if run.source != RunSource.MODEL:
        raise Conflict("Only model runs have shards to resume.")
    todo = list(run.shards.select_for_update().exclude(status=ShardStatus.DONE))
    partial = sum(s.images_done for s in todo)
    for s in todo:
        s.status, s.images_done = ShardStatus.PENDING, 0
        s.save(update_fields=["status", "images_done"])
    run.status = RunStatus.QUEUED if run.shards.filter(status=ShardStatus.DONE).count() == 0 else RunStatus.RUNNING
    run.error = ""
    run.images_done = max(0, run.images_done - partial)
    run.save(update_fields=["status", "error", "images_done"])
    ids = [s.id for s in todo]
    if enqueue:
        enqueue_shards(shard_ids=ids)
    if not todo and enqueue:
        # Every shard finished but the merge never ran (crash between the two): merge now.
        enqueue_merge(run_id=run.pk)
    return ids


def prototype_run_fail(*, run_id: int, error: str) -> None:
    PrototypeRun.objects.filter(pk=run_id).exclude(status=RunStatus.DONE).update(
        status=RunStatus.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def enqueue_merge(*, run_id: int) -> None:
    enqueue_task("prototypes.merge_run", run_id)


def mark_current(*, run: PrototypeRun) -> None:
    """Caller holds the run's lock (and saves it); the partial unique constraint guards against a racing writer."""
    PrototypeRun.objects.filter(dataset=run.dataset_id, is_current=True).exclude(pk=run.pk).update(is_current=False)
    run.is_current = True


@transaction.atomic
def prototype_run_set_current(*, run: PrototypeRun) -> PrototypeRun:
    run = PrototypeRun.objects.select_for_update().get(pk=run.pk)
    if run.status != RunStatus.DONE:
        raise Conflict(f"Prototype run {run.pk} is {run.status}; only a finished run can be current.")
    mark_current(run=run)
    run.save(update_fields=["is_current"])
    return run
