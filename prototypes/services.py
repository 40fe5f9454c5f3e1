"""Writes of the prototype service: create runs, score shards, merge, mark current.

The compute lives in prototypes/engine/ (no Django); these functions feed it the dataset's
paths and store what it returns. The database is the source of truth for progress and for
resuming: a finished shard keeps its top-k state, so a crash only redoes unfinished shards.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Dataset, Image, ImageClass
from infra.enqueue import enqueue_task, enqueue_tasks
from infra.errors import Conflict, DomainError, NotFound
from prototypes import engine
from prototypes.models import (
    Prototype,
    PrototypeRun,
    PrototypeShard,
    PrototypeSkip,
    RunSource,
    RunStatus,
    ShardStatus,
)
from prototypes.selectors import images_to_score

# A shard marked running whose heartbeat is older than this is taken to be orphaned by a dead
# worker and may be claimed again (the broker redelivers unacked messages after its visibility
# timeout, 1 h by default, so this only has to be shorter than that).
STALE_SHARD = timedelta(minutes=10)
# Progress writes on the run row at most this often (a GPU scores ~30 batches/s).
PROGRESS_EVERY_S = 0.5


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
        _enqueue_shards(run=run, shard_ids=list(run.shards.values_list("id", flat=True)))
    return run


def _enqueue_shards(*, run: PrototypeRun, shard_ids: list[int]) -> None:
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
        _enqueue_shards(run=run, shard_ids=ids)
    if not todo and enqueue:
        # Every shard finished but the merge never ran (crash between the two): merge now.
        _enqueue_merge(run_id=run.pk)
    return ids


def _claim_shard(*, shard_id: int) -> PrototypeShard | None:
    """Take a shard for scoring, or None when it is done, failed, or held by a live worker."""
    with transaction.atomic():
        try:
            shard = PrototypeShard.objects.select_for_update().select_related("run").get(pk=shard_id)
        except PrototypeShard.DoesNotExist:
            return None
        run = PrototypeRun.objects.select_for_update().get(pk=shard.run_id)
        if shard.status == ShardStatus.DONE or run.status in (RunStatus.FAILED, RunStatus.DONE):
            return None
        if (
            shard.status == ShardStatus.RUNNING
            and shard.heartbeat_at
            and timezone.now() - shard.heartbeat_at < STALE_SHARD
        ):
            return None  # another worker is on it (heartbeat recent)
        if shard.images_done:
            # A dead worker's partial progress: take it off before scoring again.
            PrototypeRun.objects.filter(pk=run.pk).update(images_done=F("images_done") - shard.images_done)
        shard.status = ShardStatus.RUNNING
        shard.attempts += 1
        shard.images_done = 0
        shard.heartbeat_at = timezone.now()
        shard.save(update_fields=["status", "attempts", "images_done", "heartbeat_at"])
        if run.status == RunStatus.QUEUED:
            run.status = RunStatus.RUNNING
            run.started_at = run.started_at or timezone.now()
            run.save(update_fields=["status", "started_at"])
        shard.run = run
        return shard


def _in_daemon_process() -> bool:
    """Celery's prefork children are daemonic and may not start DataLoader worker processes."""
    try:
        import billiard

        if billiard.current_process().daemon:
            return True
    except ImportError:  # pragma: no cover - billiard comes with celery
        pass
    return bool(multiprocessing.current_process().daemon)


def _score_options(run: PrototypeRun) -> engine.ScoreOptions:
    o = run.options or {}
    workers = o.get("num_workers")
    if _in_daemon_process():
        workers = 0
    return engine.ScoreOptions(
        device=o.get("device") or "auto",
        batch_size=o.get("batch_size"),
        num_workers=workers,
        dtype=o.get("dtype") or "auto",
        decode=o.get("decode") or "auto",
        k=run.k,
    )


def _spec(run: PrototypeRun) -> engine.ModelSpec:
    return engine.ModelSpec(
        name=run.model_name,
        weights=None if run.weights == "none" else (run.weights or None),
        checkpoint=run.checkpoint or None,
        seed=run.seed,
        image_size=run.image_size,
    )


def prototype_run_fail(*, run_id: int, error: str) -> None:
    PrototypeRun.objects.filter(pk=run_id).exclude(status=RunStatus.DONE).update(
        status=RunStatus.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def prototype_shard_score(
    *,
    shard_id: int,
    on_progress: Callable[[int], None] | None = None,
    merge_inline: bool = False,
    sink: engine.PredictionSink | None = None,
) -> bool:
    """Score one shard and store its top-k state. Returns False when there was nothing to do.

    Deliberately not one transaction: scoring takes minutes; the claim and the finish are
    short transactions, progress goes to the run row in between. When the last shard finishes,
    the merge is enqueued (or run here with merge_inline, for the command).
    """
    shard = _claim_shard(shard_id=shard_id)
    if shard is None:
        return False
    run = shard.run
    attempt = shard.attempts
    try:
        loaded = engine.load_model(_spec(run))
    except engine.EngineError as exc:
        prototype_run_fail(run_id=run.pk, error=str(exc))
        return False
    rows = (
        images_to_score(dataset=run.dataset, split=run.split)
        .filter(id__gte=shard.first_image_id, id__lte=shard.last_image_id)
        .order_by("id")
        .values_list("file_name", "relpath", "image_class__index")
    )
    root = Path(run.dataset.root)
    # The shard's paths (a few hundred bytes per image) are the only per-image memory; big
    # datasets use more shards. Scores themselves are never kept per image.
    items = [engine.Item(name, str(root / rel), label) for name, rel, label in rows.iterator(chunk_size=5000)]

    pending = {"n": 0, "t": time.monotonic()}

    def flush() -> None:
        if pending["n"]:
            n = pending["n"]
            # Both counters in one transaction: a resume subtracts the shard's count from the
            # run's, so they must never disagree, even when the worker dies between them.
            with transaction.atomic():
                PrototypeShard.objects.filter(pk=shard.pk, attempts=attempt).update(
                    images_done=F("images_done") + n, heartbeat_at=timezone.now()
                )
                PrototypeRun.objects.filter(pk=run.pk).update(images_done=F("images_done") + n)
            pending["n"] = 0
        pending["t"] = time.monotonic()

    def on_batch(n_scored: int, n_skipped: int) -> None:
        pending["n"] += n_scored + n_skipped
        if on_progress:
            on_progress(n_scored + n_skipped)
        if time.monotonic() - pending["t"] >= PROGRESS_EVERY_S:
            flush()

    try:
        result = engine.score(items, loaded, _score_options(run), on_batch=on_batch, sink=sink)
    except engine.EngineError as exc:
        prototype_run_fail(run_id=run.pk, error=str(exc))
        return False
    except Exception as exc:
        # Out of memory, a lost device...: the run says so (resumable with prototype_run_resume),
        # and the exception still reaches Celery's log.
        prototype_run_fail(run_id=run.pk, error=f"shard {shard.index}: {type(exc).__name__}: {exc}")
        raise
    flush()
    return _shard_finish(
        shard_id=shard.pk,
        attempt=attempt,
        result=result,
        loaded=loaded,
        merge_inline=merge_inline,
    )


def _shard_finish(
    *,
    shard_id: int,
    attempt: int,
    result: engine.ScoreResult,
    loaded: engine.LoadedModel,
    merge_inline: bool,
) -> bool:
    with transaction.atomic():
        shard = PrototypeShard.objects.select_for_update().get(pk=shard_id)
        run = PrototypeRun.objects.select_for_update().get(pk=shard.run_id)
        if shard.status == ShardStatus.DONE or shard.attempts != attempt or run.status == RunStatus.FAILED:
            return False  # a newer attempt owns this shard; its result wins
        shard.state = result.state.to_dict()
        shard.status = ShardStatus.DONE
        shard.scored = result.scored
        shard.skipped = len(result.skipped)
        shard.conversions = dict(result.notes)
        shard.wall_s = result.wall_s
        shard.resolved = result.resolved
        shard.finished_at = timezone.now()
        # Progress may lag behind by the last throttled write; the finished shard counts in full.
        missing = shard.images_total - shard.images_done
        shard.images_done = shard.images_total
        shard.save()
        # Only the skipped files' ids are looked up: nothing per scored image is kept.
        skipped_keys = [sk.key for sk in result.skipped]
        ids_by_key = dict(
            Image.objects.filter(dataset=run.dataset_id, file_name__in=skipped_keys).values_list("file_name", "id")
        )
        PrototypeSkip.objects.bulk_create(
            [
                PrototypeSkip(run=run, image_id=ids_by_key.get(s.key), file_name=s.key, reason=s.reason[:1000])
                for s in result.skipped
            ],
            ignore_conflicts=True,
        )
        if missing:
            run.images_done = F("images_done") + missing
        run.weights_id = loaded.weights_id
        run.weights_sha256 = loaded.weights_sha256
        run.preprocessing = loaded.pre.describe() | {"transform": "weights' eval transform (resize, crop, normalize)"}
        run.device = f"{result.resolved['device']} ({result.resolved['device_name']})"
        run.dtype = result.resolved["dtype"]
        run.batch_size = result.resolved["batch_size"]
        run.resolved = result.resolved | {"device_kind": result.resolved["device"]}
        run.library_versions = engine.library_versions()
        all_done = not run.shards.exclude(status=ShardStatus.DONE).exclude(pk=shard.pk).exists()
        if all_done:
            run.status = RunStatus.MERGING
        run.save()
        if all_done and not merge_inline:
            _enqueue_merge(run_id=run.pk)
    if all_done and merge_inline:
        prototype_run_merge(run_id=run.pk)
    return True


def _enqueue_merge(*, run_id: int) -> None:
    enqueue_task("prototypes.merge_run", run_id)


def _store_selection(*, run: PrototypeRun, state: engine.TopKState) -> None:
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


def _set_current(*, run: PrototypeRun) -> None:
    """Caller holds the run's lock; the partial unique constraint guards against a racing writer."""
    PrototypeRun.objects.filter(dataset=run.dataset_id, is_current=True).exclude(pk=run.pk).update(is_current=False)
    run.is_current = True


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
        _store_selection(run=run, state=state)
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
            _set_current(run=run)
        run.save()
        return run


@transaction.atomic
def prototype_run_set_current(*, run: PrototypeRun) -> PrototypeRun:
    run = PrototypeRun.objects.select_for_update().get(pk=run.pk)
    if run.status != RunStatus.DONE:
        raise Conflict(f"Prototype run {run.pk} is {run.status}; only a finished run can be current.")
    _set_current(run=run)
    run.save(update_fields=["is_current"])
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
    _store_selection(run=run, state=state)
    run.status = RunStatus.DONE
    run.finished_at = timezone.now()
    if make_current:
        _set_current(run=run)
    run.save()
    return run


def prototypes_check(
    *,
    dataset: Dataset,
    spec: engine.ModelSpec | None = None,
    predictions: str | None = None,
    options: engine.ScoreOptions | None = None,
) -> dict[str, Any]:
    """The paper's appendix check: accuracy of another model (or predictions file) on the current
    prototypes. Writes nothing; it lives here because it drives the engine like a run does."""
    from prototypes.selectors import current_run

    run = current_run(dataset_id=dataset.id)
    if run is None:
        raise NotFound(f"Dataset {dataset.slug} has no current prototype run.")
    protos = list(run.prototypes.select_related("image", "image_class", "image__dataset"))
    if not protos:
        raise DomainError(f"Prototype run {run.pk} has no prototypes.")
    truth = {p.image.file_name: (p.image_class.index, p.filled) for p in protos}
    preds: dict[str, int] = {}
    if predictions:
        if not Path(predictions).is_file():
            raise DomainError(f"--predictions {predictions}: no such file.", field="predictions")
        try:
            for row in engine.read_predictions(predictions):
                if isinstance(row, engine.PredictionRow) and row.key in truth:
                    preds[row.key] = row.predicted
        except engine.EngineError as exc:
            raise DomainError(str(exc), field="predictions")
        checker = f"predictions:{Path(predictions).name}"
    elif spec is not None:
        try:
            loaded = engine.load_model(spec)
        except engine.EngineError as exc:
            raise DomainError(str(exc), field="weights")
        items = [engine.Item(p.image.file_name, str(p.image.path), p.image_class.index) for p in protos]
        engine.score(items, loaded, options, sink=lambda key, label, pred, prob, tp: preds.__setitem__(key, pred))
        checker = f"{spec.name}:{loaded.weights_id}"
    else:
        raise DomainError("Give a model or a predictions file to check the prototypes with.")
    n = sum(1 for key in truth if key in preds)
    correct = sum(1 for key, (label, _) in truth.items() if preds.get(key) == label)
    not_filled = [key for key, (_, filled) in truth.items() if not filled and key in preds]
    correct_nf = sum(1 for key in not_filled if preds[key] == truth[key][0])
    return {
        "run": run.pk,
        "checker": checker,
        "prototypes": len(truth),
        "checked": n,
        "missing": len(truth) - n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "accuracy_excluding_filled": correct_nf / len(not_filled) if not_filled else None,
    }


__all__ = [
    "prototype_run_create",
    "prototype_run_fail",
    "prototype_run_from_predictions",
    "prototype_run_merge",
    "prototype_run_resume",
    "prototype_run_set_current",
    "prototype_shard_score",
    "prototypes_check",
]
