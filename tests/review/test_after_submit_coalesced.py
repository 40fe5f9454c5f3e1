"""Review's after-submit checks are coalesced (infra.enqueue): a burst of submits publishes one
drain, the drain handles the list in batches, and nothing is lost when a drain dies (its lock
expires, a waiting drain retries) or when items wait with no drain at all (a starting worker
publishes one). Real Redis, real Celery worker, real spaCy vectors."""

import time

import pytest
import redis
from django.conf import settings

from infra import enqueue
from review.models import ConsistencyFlag
from review.tasks import AFTER_SUBMIT
from tests.review.conftest import answer, make_images

KEY = "fov:coalesce:" + AFTER_SUBMIT


def _r():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _wait_flags(anns, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ConsistencyFlag.objects.filter(annotation__in=anns).values("annotation").distinct().count() == len(anns):
            return
        time.sleep(0.25)
    raise AssertionError("not every answer was checked")


def _wait_empty(timeout=60):
    r = _r()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (r.llen(KEY) or r.exists(KEY + ":lock")):
        time.sleep(0.25)
    assert not r.llen(KEY) and not r.exists(KEY + ":lock")


@pytest.fixture
def clean_list():
    r = _r()
    r.delete(KEY, KEY + ":lock", KEY + ":scheduled")
    yield
    r.delete(KEY, KEY + ":lock", KEY + ":scheduled")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_burst_of_submits_publishes_one_drain_and_every_answer_is_checked_once(
    clean_list, celery_worker, tmp_path, annotator
):
    imgs = make_images(tmp_path / "burst", 8)
    published = []
    real = enqueue.current_app.signature

    def counting(name, *a, **kw):
        if name == "review.after_submit_drain":
            published.append(name)
        return real(name, *a, **kw)

    from django.db import transaction

    enqueue.current_app.signature = counting
    try:
        with transaction.atomic():  # a burst: eight answers committed at once
            anns = [answer(img, annotator, ["pose"], justification="Much darker than the prototypes.") for img in imgs]
        _wait_flags(anns)
    finally:
        enqueue.current_app.signature = real
    _wait_empty()
    # Fewer drains than answers (one, unless a drain emptied the list between two pushes).
    assert 1 <= len(published) < len(anns), published
    # Idempotent per version: one flag per answer, however many drains saw it.
    assert ConsistencyFlag.objects.filter(annotation__in=anns).count() == len(anns)


@pytest.mark.postgres
@pytest.mark.slow
def test_items_left_by_a_dead_drain_are_handled_once_its_lock_expires(
    clean_list, celery_worker, tmp_path, annotator, monkeypatch
):
    # A drain that died mid-batch: its lock is still there (for 2 s here) and its items too.
    r = _r()
    r.set(KEY + ":lock", "dead-drain", ex=2)
    imgs = make_images(tmp_path / "dead", 3)
    anns = [answer(img, annotator, ["pose"], justification="Much darker than the prototypes.") for img in imgs]
    _wait_flags(anns)  # the new drain retried until the dead one's lock expired
    _wait_empty()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_starting_worker_drains_what_nobody_was_going_to(
    clean_list, celery_worker_process, tmp_path, annotator, settings
):
    # Stored answers whose ids wait in the list with no drain published (its worker died
    # before publishing, the window passed, and no one submitted since).
    imgs = make_images(tmp_path / "orphans", 2)
    settings.REVIEW_CHECKS_ON_SUBMIT = False  # written without any after-commit work
    anns = [answer(img, annotator, ["pose"], justification="Much darker than the prototypes.") for img in imgs]
    settings.REVIEW_CHECKS_ON_SUBMIT = True
    assert not ConsistencyFlag.objects.filter(annotation__in=anns).exists()
    _r().rpush(KEY, *[a.pk for a in anns])
    celery_worker_process(queues="default")  # a real `celery worker`: its worker_ready publishes a drain
    _wait_flags(anns)
    _wait_empty()
