"""Celery adapters: ids in, one service call."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="review.after_submit", ignore_result=True)
def review_after_submit(annotation_id: int) -> dict:
    """Consistency flags and full-agreement auto-acceptance for a freshly submitted/edited annotation."""
    from review import services

    return services.review_after_submit(annotation_id=annotation_id)
