"""Enqueue Celery tasks by name once the current transaction commits.

Services never import their app's tasks module (tasks import services, so the other direction
would be a circle): they name the task. Sending after commit means a worker always sees the
rows the task reads, and a rolled-back request enqueues nothing. Queues come from the task
name through CELERY_TASK_ROUTES (config/settings.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from celery import current_app
from django.db import transaction

# A broker restart takes a second or two: wait it out (up to ~10 s) rather than lose the task.
_PUBLISH_RETRY = {"max_retries": 8, "interval_start": 0.2, "interval_step": 0.4, "interval_max": 2.0}


def enqueue_task(task_name: str, *args) -> None:
    """Send one task after commit (at once when no transaction is open)."""
    enqueue_tasks(task_name, [args])


def enqueue_tasks(task_name: str, arg_lists: Iterable[Sequence]) -> None:
    """Send one task per argument list after commit, in order."""
    arg_lists = [tuple(a) for a in arg_lists]

    def send() -> None:
        if task_name not in current_app.tasks:
            # Outside a worker the tasks modules are imported lazily (Celery autodiscovery runs
            # on import_default_modules); load them once so the name resolves in this process.
            current_app.loader.import_default_modules()
        # A signature looks the task up in the registry, so eager mode (the embedded default)
        # runs it in-process; app.send_task would bypass CELERY_TASK_ALWAYS_EAGER.
        for args in arg_lists:
            current_app.signature(task_name, args=args).apply_async(retry_policy=_PUBLISH_RETRY)

    # Robust with a broker: the transaction has committed by now, and a broker that stays down
    # past the retries must not turn a stored answer into a 500 (the client would retry what
    # already exists); Django logs the failure and the request succeeds. Eager mode (no broker)
    # keeps errors propagating: there the task itself runs here and its failure is a bug.
    transaction.on_commit(send, robust=not current_app.conf.task_always_eager)
