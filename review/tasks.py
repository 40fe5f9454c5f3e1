"""Celery adapters: ids in, one service call."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

AFTER_SUBMIT = "review.after_submit"  # the coalesced list of annotation ids (infra.enqueue)
AFTER_SUBMIT_DRAIN = "review.after_submit_drain"


@shared_task(name="review.after_submit", ignore_result=True)
def review_after_submit(annotation_id: int) -> dict:
    """Consistency flags and full-agreement auto-acceptance for a freshly submitted/edited annotation."""
    from review import services

    return services.review_after_submit(annotation_id=annotation_id)


@shared_task(name=AFTER_SUBMIT_DRAIN, bind=True, ignore_result=True, max_retries=None)
def review_after_submit_drain(self, name: str = AFTER_SUBMIT) -> int:
    """The after-submit checks of every answer waiting in the coalesced list, in batches."""
    from infra.enqueue import coalesced_drain
    from review import services

    done = coalesced_drain(name, lambda ids: services.review_after_submit_many(annotation_ids=ids))
    if done is None:  # another drain holds the list; make sure what it leaves is handled too
        raise self.retry(countdown=1)
    return done


@shared_task(name="review.quality_report_refresh", ignore_result=True)
def quality_report_refresh(key: str) -> None:
    """A new quality report for one dashboard filter (review.services.quality)."""
    from review import services

    services.quality_report_refresh(key=key)


@worker_ready.connect
def _drain_what_a_dead_worker_left(**_kwargs) -> None:
    from infra.enqueue import coalesced_kick

    try:
        coalesced_kick(AFTER_SUBMIT, drain_task=AFTER_SUBMIT_DRAIN)
    except Exception:  # the broker is down: the next submit publishes a drain anyway
        import logging

        logging.getLogger(__name__).exception("could not check the after-submit list")
