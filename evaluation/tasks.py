"""Celery adapter (queue "default" via the evaluation.* route): ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from evaluation import services


@shared_task(name=services.TASK_NAME, acks_late=True, ignore_result=True)
def compute_batch(evaluation_ids: list[int], batch_id: int | None = None) -> None:
    # Rows already done are skipped by the service, so a redelivered message is harmless.
    services.evaluation_compute(evaluation_ids=evaluation_ids, batch_id=batch_id)
