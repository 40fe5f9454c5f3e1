"""Celery adapters of the curation pipeline (queue "curation", routed by the "curation." name prefix).

The canvas is a chord: one `curation.chunk` task per frozen chunk of final annotations, then
`curation.finalise`. Each task takes JSON-safe ids and calls one service; progress lives on the
run's row, not in the result backend.
"""

from __future__ import annotations

import logging
import time

from celery import chord, shared_task
from celery.signals import worker_ready
from django.conf import settings

from curation import figures, services, statistics  # noqa: F401  (imported here so workers pay matplotlib/scipy imports at start, not inside the first run)

log = logging.getLogger(__name__)

CHUNK_MAX_RETRIES = 3
# Finalise waits for chunks that a crashed worker left unacknowledged: the broker redelivers
# them after its visibility timeout, so finalise polls (1 s apart) for up to about an hour.
FINALISE_MAX_RETRIES = 3600


@shared_task(name="curation.launch", acks_late=True, ignore_result=True)
def launch_run(run_id: int) -> None:
    """Start the chord for the run's chunks that are not done yet (all of them for a new run)."""
    pending = services.curation_run_pending_chunks(run_id=run_id)
    if not pending:
        finalise.delay(run_id)
        return
    chord([process_chunk.s(run_id, i) for i in pending])(finalise.si(run_id))


@shared_task(bind=True, name="curation.chunk", max_retries=CHUNK_MAX_RETRIES, acks_late=True)
def process_chunk(self, run_id: int, index: int) -> int:
    throttle = settings.CURATION_CHUNK_THROTTLE_S
    if throttle:
        time.sleep(throttle)
    try:
        return services.curation_chunk_process(run_id=run_id, index=index)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            log.exception("curation run %s chunk %s failed for good", run_id, index)
            services.curation_run_fail(
                run_id=run_id,
                chunk_index=index,
                reason=f"chunk {index} failed after {self.request.retries + 1} attempts: {type(exc).__name__}: {exc}",
            )
            raise
        # Exponential back-off: a database restart or lock timeout usually clears within seconds.
        raise self.retry(exc=exc, countdown=2**self.request.retries)


@shared_task(bind=True, name="curation.finalise", max_retries=FINALISE_MAX_RETRIES, acks_late=True)
def finalise(self, run_id: int) -> str:
    try:
        return services.curation_finalise(run_id=run_id).status
    except services.RunNotReady as exc:
        # A chunk that was redelivered after a worker crash can make the chord fire before the
        # last chunk is stored; wait for it instead of finishing with half the results.
        if self.request.retries >= self.max_retries:
            services.curation_run_fail(run_id=run_id, reason=f"gave up waiting for chunks: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=1)
    except Exception as exc:
        log.exception("curation run %s failed while finalising", run_id)
        services.curation_run_fail(run_id=run_id, reason=f"finalise failed: {type(exc).__name__}: {exc}")
        raise


@worker_ready.connect
def _finalise_what_a_dead_worker_left(**_kwargs) -> None:
    """A worker that starts (a supervisor's replacement for a killed one, say) finalises the
    runs whose chunks are all stored but that nobody finalised (curation_runs_awaiting_finalise)."""
    try:
        for run_id in services.curation_runs_awaiting_finalise():
            log.warning("curation run %s has every chunk stored but is not finalised: finalising it", run_id)
            finalise.delay(run_id)
    except Exception:  # the database or the broker is down: the worker starts anyway
        log.exception("could not look for curation runs awaiting finalise")
