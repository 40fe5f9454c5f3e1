"""Scoring one shard of a model run: claim it (PrototypeShard), stream progress onto the shard
and run rows, store its top-k state and skipped files (PrototypeSkip), and hand the run to the
merge when its last shard finishes.

The database is the source of truth for progress and for resuming: a finished shard keeps its
top-k state, so a crash only redoes unfinished shards.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Image
from prototypes import engine
from prototypes.models import PrototypeRun, PrototypeShard, PrototypeSkip, RunStatus, ShardStatus
from prototypes.selectors import images_to_score
from prototypes.services.runs import enqueue_merge, prototype_run_fail
from prototypes.services.selection import prototype_run_merge

# A shard marked running whose heartbeat is older than this is taken to be orphaned by a dead
# worker and may be claimed again (the broker redelivers unacked messages after its visibility
# timeout, 1 h by default, so this only has to be shorter than that).
STALE_SHARD = timedelta(minutes=10)
# Progress writes on the run row at most this often (a GPU scores ~30 batches/s).
PROGRESS_EVERY_S = 0.5


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
            enqueue_merge(run_id=run.pk)
    if all_done and merge_inline:
        prototype_run_merge(run_id=run.pk)
    return True
