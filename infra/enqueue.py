"""Enqueue Celery tasks by name once the current transaction commits.

Services never import their app's tasks module (tasks import services, so the other direction
would be a circle): they name the task. Sending after commit means a worker always sees the
rows the task reads, and a rolled-back request enqueues nothing. Queues come from the task
name through CELERY_TASK_ROUTES (config/settings.py).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
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


# --- Coalesced tasks: one message per burst instead of one per item -------------------------------
# Every submit used to publish its own Celery message for review's after-submit checks; kombu
# and Celery spent about 1.5 ms of the web process's CPU on each (the annotation queue's
# profile, issue 14), and the worker paid per message again (a query set per annotation). Here
# the item goes onto a Redis list after commit, and a drain task is published at most once per
# window; the drain handles the list in batches until it is empty.
#
# Nothing is lost when a worker dies: a batch leaves the list only after it was handled
# (handlers are idempotent: they may see an item twice), one drain runs at a time (a lock with
# a short lease that the drain renews after each batch; a drain that finds it held retries),
# and a worker that starts publishes a drain for every list that is not empty.
COALESCE_WINDOW_S = 1
COALESCE_LOCK_S = 30
_redis_clients: dict[str, object] = {}


def _redis():
    import redis

    url = settings.CELERY_BROKER_URL
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    return client


def _coalesce_key(name: str) -> str:
    return f"fov:coalesce:{name}"


def enqueue_coalesced(name: str, item: int, *, drain_task: str, eager_task: str) -> None:
    """After commit, add `item` to the pending list `name` and make sure `drain_task` runs soon.

    Without a broker (the embedded default) `eager_task` runs for the item at once, as
    enqueue_task would. A broker that is down past the retries loses the item's after-commit
    work as enqueue_task would (logged; the request has committed and succeeds).
    """
    if current_app.conf.task_always_eager:
        enqueue_task(eager_task, item)
        return
    key = _coalesce_key(name)

    def push() -> None:
        r = _redis()
        pipe = r.pipeline(transaction=False)
        pipe.rpush(key, int(item))
        pipe.set(key + ":scheduled", "1", nx=True, ex=COALESCE_WINDOW_S * 5)
        _, first = pipe.execute()
        if first:
            current_app.signature(drain_task, args=(name,)).apply_async(retry_policy=_PUBLISH_RETRY)

    def send() -> None:
        for attempt in range(_PUBLISH_RETRY["max_retries"] + 1):
            try:
                return push()
            except Exception:  # a broker restart: wait it out like a publish would
                if attempt == _PUBLISH_RETRY["max_retries"]:
                    raise
                time.sleep(min(_PUBLISH_RETRY["interval_max"], 0.2 + 0.4 * attempt))

    transaction.on_commit(send, robust=True)


def coalesced_pending(name: str) -> int:
    """How many items wait in the list `name` (the rehearsal waits for 0)."""
    return int(_redis().llen(_coalesce_key(name)))


def coalesced_drain(name: str, handle, *, batch_size: int = 200) -> int | None:
    """Handle the list `name` in batches until it is empty; the number handled, or None when
    another drain holds the lock (the caller retries a little later)."""
    r = _redis()
    key = _coalesce_key(name)
    token = secrets.token_hex(8)
    if not r.set(key + ":lock", token, nx=True, ex=COALESCE_LOCK_S):
        return None
    done = 0
    try:
        while True:
            # Cleared before every read: an item pushed after this read publishes a new drain.
            r.delete(key + ":scheduled")
            batch = r.lrange(key, 0, batch_size - 1)
            if not batch:
                return done
            handle([int(x) for x in batch])
            r.ltrim(key, len(batch), -1)  # only what was handled leaves the list
            r.expire(key + ":lock", COALESCE_LOCK_S)
            done += len(batch)
    finally:
        # Release our own lock only (it may have expired and been taken by another drain).
        r.eval(_RELEASE_LUA, 1, key + ":lock", token)


_RELEASE_LUA = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def coalesced_kick(name: str, *, drain_task: str) -> bool:
    """Publish a drain when the list is not empty (a worker starting up: a drain that died left
    items behind)."""
    if current_app.conf.task_always_eager or not coalesced_pending(name):
        return False
    current_app.signature(drain_task, args=(name,)).apply_async(retry_policy=_PUBLISH_RETRY)
    return True
