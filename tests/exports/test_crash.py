"""A worker that dies mid-build leaves no published or half-written release; a retry builds cleanly."""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from exports import services
from exports.models import Release, ReleaseStatus
from tests.exports.factories import curation_run_from_final, load_imagenet_x, package_lines


def _wait(predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.slow
def test_worker_killed_mid_build_leaves_nothing_half_written_and_a_retry_builds_cleanly(
    transactional_db, maintainer, celery_worker_process, settings
):
    dataset = load_imagenet_x(n_val=40, n_train=20)
    run = curation_run_from_final(dataset)
    release = services.release_create(dataset=dataset, version="1.0.0", curation_run=run, created_by=maintainer)
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    root = services.releases_root()

    services.release_build_start(release_id=release.pk, user=maintainer)  # enqueued on commit
    # Hold the release row: the worker writes its first files, then blocks on its first progress
    # report, so the kill below lands mid-build, with files half-written in its temporary folder.
    with transaction.atomic():
        Release.objects.select_for_update().get(pk=release.pk)
        worker = celery_worker_process(queues="exports", extra_env=env)

        def blocked_mid_build() -> bool:
            tmp = list(root.glob(f".build-{release.pk}-*/prototypical_paths.csv"))
            with connection.cursor() as cur:
                # Activity statistics are a snapshot per transaction: refresh it before each look.
                cur.execute("SELECT pg_stat_clear_snapshot()")
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
                return bool(tmp) and cur.fetchone()[0] > 0

        _wait(blocked_mid_build, what="the worker to block mid-build")
        worker.kill()  # SIGKILL: no cleanup code runs
        worker.wait(timeout=30)

    release.refresh_from_db()
    assert release.status == ReleaseStatus.BUILDING and not release.is_published
    assert not release.files.exists() and release.archive_sha256 == ""
    assert not services.release_dir(release).exists()
    assert list(root.glob(f".build-{release.pk}-*")), "the dead attempt's temporary folder stays hidden"

    settings.EXPORTS_BUILD_STALE_SECONDS = 0  # the maintainer retries the stuck build
    retried = services.release_build_start(release_id=release.pk, user=maintainer)
    celery_worker_process(queues="exports", extra_env=env)

    def built() -> bool:
        release.refresh_from_db()
        return release.status != ReleaseStatus.BUILDING

    _wait(built, what="the retried build")
    assert release.status == ReleaseStatus.BUILT, release.error
    assert release.build_token == retried.build_token
    assert not list(root.glob(f".build-{release.pk}-*"))
    final = services.release_dir(release)
    assert sorted(p.name for p in final.iterdir()) == sorted(
        [*release.files.values_list("name", flat=True), f"{release.base_name}.tar.gz"]
    )
    assert (final / "imagenet_x_val_multi_factor.jsonl").read_bytes() == b"".join(package_lines("val", "multi", 40))
    services.release_publish(release_id=release.pk, user=maintainer)
