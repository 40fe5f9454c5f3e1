"""Shared fixtures: the three roles plus an outsider, API clients, real Celery workers.

The suite runs on the real PostgreSQL and Redis (make test-postgres); tests marked
`embedded` also run on the embedded default (SQLite, eager tasks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from infra.roles import Role

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    """Every test has its own node id, or pytest-xdist (make test) runs only one of those that share it.

    schemathesis names each operation's item `test[GET /path]` but gives them all the test
    function's node id; xdist schedules by node id and ran one operation per role (4 of 172)
    without a word. The name goes into the node id here, and a shared id stops the run.
    """
    from _pytest.nodeid import coerce_node_id  # pytest 9 keeps the id structured (Node._id)

    for item in items:
        if type(item).__name__ == "SchemathesisFunction" and not item.nodeid.endswith("]"):
            item._id = coerce_node_id(f"{item.nodeid.rsplit('::', 1)[0]}::{item.name}")
    shared = sorted(k for k, n in Counter(item.nodeid for item in items).items() if n > 1)
    if shared:
        raise pytest.UsageError(f"tests share a node id (xdist would run one of each): {shared[:5]}")


def _make_user(django_user_model, username: str, *roles: str):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def annotator(django_user_model):
    return _make_user(django_user_model, "ann", Role.ANNOTATOR)


@pytest.fixture
def other_annotator(django_user_model):
    return _make_user(django_user_model, "ann2", Role.ANNOTATOR)


@pytest.fixture
def reviewer(django_user_model):
    return _make_user(django_user_model, "rev", Role.REVIEWER)


@pytest.fixture
def maintainer(django_user_model):
    return _make_user(django_user_model, "boss", Role.MAINTAINER)


@pytest.fixture
def researcher(django_user_model):
    return _make_user(django_user_model, "res", Role.RESEARCHER)


@pytest.fixture
def outsider(django_user_model):
    """Signed in, but holds no role."""
    return _make_user(django_user_model, "nobody")


@pytest.fixture
def api():
    return APIClient()


def client_for(user):
    """A Django test client logged in as `user` (CSRF checks stay enforced)."""
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    return c


@pytest.fixture
def requires_broker():
    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs CELERY_BROKER_URL (Redis); runs in make test-postgres")


@pytest.fixture
def celery_worker(transactional_db, requires_broker):
    """A real Celery worker (thread in this process) consuming every queue from Redis.

    Needs a transactional database: the worker thread has its own connection and must see
    committed rows.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.conf.task_always_eager = False
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=["default", "curation", "gpu", "exports"],
        perform_ping_check=False,
        shutdown_timeout=30,
    ) as worker:
        yield worker


@pytest.fixture
def celery_worker_process(transactional_db, requires_broker):
    """Start real `celery worker` subprocesses against the test database; yields a starter.

    `start(queues="default")` returns the Popen; kill it to simulate a crash.
    """
    from django.db import connection

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}"
    procs: list[subprocess.Popen] = []

    def start(queues: str = "default,curation,gpu,exports", concurrency: int = 1, extra_env: dict | None = None):
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TESTING": "1",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            **(extra_env or {}),
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "--pool",
                "prefork" if concurrency > 1 else "solo",
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=REPO,
            env=env,
        )
        procs.append(proc)
        time.sleep(0.2)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session", autouse=True)
def _purge_broker():
    """Start each run with empty queues so stale messages of an earlier run cannot leak in."""
    if settings.CELERY_BROKER_URL:
        from config.celery import app

        app.control.purge()
    yield


@pytest.fixture(scope="session", autouse=True)
def _end_stray_database_sessions(django_db_setup, django_db_blocker):
    """Let the test database be dropped at the end even if a worker thread kept a connection.

    Worker threads and killed worker subprocesses can leave PostgreSQL sessions behind; their
    teardown runs after this one, so the test database would otherwise stay "being accessed
    by other users" and could not be dropped.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# --- Browser tests ------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"  # Debian's package: Playwright cannot download its own browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # The machine has no network: without these Chromium keeps trying to reach its services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "var" / "screenshots"


@pytest.fixture
def browser():
    """Headless Chromium through Playwright's sync API; screenshots go to var/screenshots/.

    Skipped on a developer machine without chromium; on CI (.ci/run installs it) a missing
    browser fails instead of silently skipping the browser tests.
    """
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    # live_server runs Django in a thread while Playwright's sync API holds an event loop in this one.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@contextmanager
def committed_imagenet_x_release(django_db_blocker):
    """Import the real ImageNet-X release once, committed (for a module-scoped fixture), and
    empty the catalogue afterwards so later modules start clean.

    Refuses anything but a test database: a module whose tests forget to request `db` gets no
    test database from pytest-django, and this would import into (and truncate) the configured one.
    """
    from django.db import connection

    from catalog.models import Dataset
    from catalog.services import imagenet_x_import

    assert (
        connection.settings_dict["NAME"].startswith(("test_", "file:memorydb"))
        or connection.settings_dict["NAME"] == ":memory:"
    ), "refusing to import into a non-test database"
    try:
        with django_db_blocker.unblock():
            yield imagenet_x_import()
    finally:
        with django_db_blocker.unblock():
            if connection.vendor == "postgresql":
                with connection.cursor() as cur:
                    cur.execute("TRUNCATE catalog_dataset CASCADE")
            else:
                Dataset.objects.all().delete()
