"""Celery adapters for the prototype service (queue "gpu", routed by CELERY_TASK_ROUTES).

JSON-safe ids in, one service call each; progress lives on the PrototypeRun row. A shard's
message is acknowledged late, so a worker killed mid-shard leaves it to be redelivered, and the
claim in prototype_shard_score makes a redelivered finished shard a no-op.

Run the GPU worker with one process per GPU: `celery -A config worker -Q gpu --pool solo`
(a prefork child is daemonic and cannot start DataLoader decode workers; the service then
falls back to decoding in-process).
"""

from __future__ import annotations

from celery import shared_task

from prototypes import services


@shared_task(name="prototypes.score_shard", acks_late=True)
def score_shard(shard_id: int) -> bool:
    return services.prototype_shard_score(shard_id=shard_id)


@shared_task(name="prototypes.merge_run", acks_late=True)
def merge_run(run_id: int) -> int:
    return services.prototype_run_merge(run_id=run_id).pk
