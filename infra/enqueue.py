"""Enqueue Celery tasks by name once the current transaction commits.

Services never import their app's tasks module (tasks import services, so the other direction
would be a circle): they name the task. Sending after commit means a worker always sees the
rows the task reads, and a rolled-back request enqueues nothing. Queues come from the task
name through CELERY_TASK_ROUTES (config/settings.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

from celery import current_app
from django.conf import settings
from django.db import connection, transaction

log = logging.getLogger(__name__)

# A broker restart takes a second or two: wait it out (up to ~10 s) rather than lose the task.
_PUBLISH_RETRY = {"max_retries": 8, "interval_start": 0.2, "interval_step": 0.4, "interval_max": 2.0}


def enqueue_task(task_name: str, *args, long_running: bool = False) -> None:
    """Send one task after commit (at once when no transaction is open).

    `long_running`: with a broker nothing changes. In the embedded default (no broker, tasks
    eager) the task would run inside the request that enqueued it — the ImageNet-X curation
    took ~26 s before the page answered. Such a task runs instead in a background thread of
    this process, started after the commit (settings.EAGER_LONG_TASKS_IN_THREAD), so the page
    answers at once and shows the progress the task writes to its own row. The thread stands
    in for the worker the embedded default does not have; if the process stops mid-task, the
    row stays `running` and the run's restart button (a stale run) picks it up again.
    """
    enqueue_tasks(task_name, [args], long_running=long_running)


def _run_in_thread(task_name: str, arg_lists: list[tuple]) -> None:
    def work() -> None:
        try:
            for args in arg_lists:
                current_app.signature(task_name, args=args).apply_async()
        except Exception:  # the task records its own failure on its row; say it in the log too
            log.exception("background task %s%r failed", task_name, arg_lists)
        finally:
            connection.close()  # this thread's own database connection

    threading.Thread(target=work, name=f"eager-{task_name}", daemon=True).start()


def enqueue_tasks(task_name: str, arg_lists: Iterable[Sequence], *, long_running: bool = False) -> None:
    """Send one task per argument list after commit, in order."""
    arg_lists = [tuple(a) for a in arg_lists]
    in_thread = long_running and current_app.conf.task_always_eager and settings.EAGER_LONG_TASKS_IN_THREAD

    def send() -> None:
        if task_name not in current_app.tasks:
            # Outside a worker the tasks modules are imported lazily (Celery autodiscovery runs
            # on import_default_modules); load them once so the name resolves in this process.
            current_app.loader.import_default_modules()
        if in_thread:
            _run_in_thread(task_name, arg_lists)
            return
        # A signature looks the task up in the registry, so eager mode (the embedded default)
        # runs it in-process; app.send_task would bypass CELERY_TASK_ALWAYS_EAGER.
        for args in arg_lists:
            current_app.signature(task_name, args=args).apply_async(retry_policy=_PUBLISH_RETRY)

    # Robust with a broker: the transaction has committed by now, and a broker that stays down
    # past the retries must not turn a stored answer into a 500 (the client would retry what
    # already exists); Django logs the failure and the request succeeds. Eager mode (no broker)
    # keeps errors propagating: there the task itself runs here and its failure is a bug.
    transaction.on_commit(send, robust=not current_app.conf.task_always_eager)
