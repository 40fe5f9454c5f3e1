"""Bad requests are refused with a clear message and change nothing."""

from __future__ import annotations

import pytest

from curation.models import CurationRun
from exports import services
from exports.models import Release, ReleaseStatus
from infra.errors import Conflict, DomainError
from tests.exports.factories import curation_run_from_final

pytestmark = pytest.mark.embedded  # no PostgreSQL-only feature: also runs on the embedded default


def test_release_from_a_failed_curation_run_is_refused(imagenet_x, maintainer):
    run = curation_run_from_final(imagenet_x, status="failed", error="spaCy model missing")
    with pytest.raises(DomainError, match="failed") as exc:
        services.release_create(dataset=imagenet_x, version="1.0.0", curation_run=run, created_by=maintainer)
    assert exc.value.code == "curation_run_failed"
    assert not Release.objects.exists()


@pytest.mark.parametrize("status", ["pending", "running"])
def test_release_from_an_unfinished_curation_run_is_refused(imagenet_x, maintainer, status):
    run = curation_run_from_final(imagenet_x, status=status)
    with pytest.raises(DomainError, match="wait until it is done") as exc:
        services.release_create(dataset=imagenet_x, version="1.0.0", curation_run=run, created_by=maintainer)
    assert exc.value.code == "curation_run_unfinished"
    assert not Release.objects.exists()


def test_building_when_the_run_is_no_longer_done_is_refused(done_run, maintainer):
    release = services.release_create(
        dataset=done_run.dataset, version="1.0.0", curation_run=done_run, created_by=maintainer
    )
    CurationRun.objects.filter(pk=done_run.pk).update(status="failed", error="re-run broke")
    with pytest.raises(DomainError, match="failed"):
        services.release_build_start(release_id=release.pk, user=maintainer)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DRAFT


def test_duplicate_version_is_refused(done_run, maintainer):
    services.release_create(dataset=done_run.dataset, version="1.0.0", curation_run=done_run, created_by=maintainer)
    with pytest.raises(Conflict, match="already has a release 1.0.0") as exc:
        services.release_create(
            dataset=done_run.dataset, version="v1.0.0", curation_run=done_run, created_by=maintainer
        )
    assert exc.value.code == "duplicate_version"
    assert Release.objects.count() == 1


@pytest.mark.parametrize("version", ["1.0", "one", "01.0.0", "1.0.0-", ""])
def test_version_that_is_not_semantic_is_refused(done_run, maintainer, version):
    with pytest.raises(DomainError, match="semantic version") as exc:
        services.release_create(dataset=done_run.dataset, version=version, curation_run=done_run, created_by=maintainer)
    assert exc.value.field == "version"
    assert not Release.objects.exists()


def test_run_of_another_dataset_is_refused(done_run, maintainer):
    from catalog.models import Dataset

    other = Dataset.objects.create(slug="other", name="Other")
    with pytest.raises(DomainError, match="another dataset"):
        services.release_create(dataset=other, version="1.0.0", curation_run=done_run, created_by=maintainer)
    assert not Release.objects.exists()


def test_publishing_an_unbuilt_release_is_refused(done_run, maintainer):
    release = services.release_create(
        dataset=done_run.dataset, version="1.0.0", curation_run=done_run, created_by=maintainer
    )
    with pytest.raises(Conflict, match="build it first"):
        services.release_publish(release_id=release.pk, user=maintainer)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DRAFT


def test_building_twice_at_once_is_refused(done_run, maintainer, django_capture_on_commit_callbacks):
    release = services.release_create(
        dataset=done_run.dataset, version="1.0.0", curation_run=done_run, created_by=maintainer
    )
    with django_capture_on_commit_callbacks(execute=False):
        first = services.release_build_start(release_id=release.pk, user=maintainer)
    with pytest.raises(Conflict, match="being built"):
        services.release_build_start(release_id=release.pk, user=maintainer)
    release.refresh_from_db()
    assert release.build_token == first.build_token


def test_a_build_whose_token_was_superseded_does_nothing(
    done_run, build, maintainer, settings, django_capture_on_commit_callbacks
):
    settings.EXPORTS_BUILD_STALE_SECONDS = 0
    release = services.release_create(
        dataset=done_run.dataset, version="1.0.0", curation_run=done_run, created_by=maintainer
    )
    with django_capture_on_commit_callbacks(execute=False):
        old = services.release_build_start(release_id=release.pk, user=maintainer)
        new = services.release_build_start(release_id=release.pk, user=maintainer)
    assert services.release_build(release_id=release.pk, token=old.build_token) is None
    release.refresh_from_db()
    assert release.status == ReleaseStatus.BUILDING and not release.files.exists()
    assert services.release_build(release_id=release.pk, token=new.build_token).status == ReleaseStatus.BUILT


def test_a_build_that_fails_is_marked_failed_with_its_reason_and_can_be_retried(done_run, build, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the releases folder should be")
    settings.EXPORTS_ROOT = blocker
    release = build(done_run)
    assert release.status == ReleaseStatus.FAILED and "not-a-folder" in release.error
    assert not release.files.exists() and release.archive_sha256 == ""
    settings.EXPORTS_ROOT = tmp_path / "releases"
    release = build(done_run, release=release)
    assert release.status == ReleaseStatus.BUILT and release.error == ""
