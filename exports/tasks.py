"""Celery adapters (queue "exports" via the exports.* route): ids in, one service call."""

from __future__ import annotations

from celery import shared_task

from exports import services


@shared_task(name="exports.build_release", acks_late=True, ignore_result=True)
def build_release(release_id: int, token: str) -> None:
    # The token ties this message to one build attempt: a redelivered message of an older,
    # superseded attempt finds another token on the row and does nothing.
    services.release_build(release_id=release_id, token=token)
