"""Celery adapter (queue "default" via the evaluation.* route): ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from evaluation import services


@shared_task(name=services.TASK_NAME, acks_late=True, ignore_result=True)
def compute_batch(evaluation_ids: list[int], batch_id: int | None = None) -> None:
    # Rows already done are skipped by the service, so a redelivered message is harmless.
    services.evaluation_compute(evaluation_ids=evaluation_ids, batch_id=batch_id)


@shared_task(name="evaluation.score_and_evaluate", acks_late=True, ignore_result=True)
def score_and_evaluate(
    owner_id: int, name: str, dataset_slug: str, model_name: str, weights: str, **evaluation
) -> None:
    """Routed to the gpu queue (config/settings.py): the scoring needs torch."""
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.get(pk=owner_id)
    ev = services.evaluation_from_scoring(
        owner=owner,
        name=name,
        dataset_slug=dataset_slug,
        model_name=model_name,
        weights=weights,
        enqueue=False,
        **evaluation,
    )
    services.evaluation_compute(evaluation_ids=[ev.pk])
