"""Writes of a release's life outside its build: create a draft, publish a built one.

Published releases are immutable (exports/models.py and the PostgreSQL trigger of migration
0002); publishing is the last write a release gets.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Dataset
from curation.models import CuratedImage, CurationRun
from exports.licenses import DEFAULT_LICENSE, NOTES_MAX, SPDX_LICENSES
from exports.models import SEMVER_RE, Release, ReleaseImmutable, ReleaseStatus
from exports.selectors import verify_release_file
from infra.errors import Conflict, DomainError, NotFound


def normalize_version(version: str) -> str:
    v = (version or "").strip()
    if v[:1] in ("v", "V"):
        v = v[1:]
    return v


# --- create --------------------------------------------------------------------------------
@transaction.atomic
def release_create(
    *,
    dataset: Dataset,
    version: str,
    curation_run: CurationRun,
    created_by: Any,
    notes: str = "",
    license: str = DEFAULT_LICENSE,
) -> Release:
    """A draft release of `dataset` built from a done curation run of that dataset."""
    version = normalize_version(version)
    if not SEMVER_RE.match(version):
        raise DomainError(
            f"{version!r} is not a semantic version; write MAJOR.MINOR.PATCH, e.g. 1.0.0.",
            code="invalid_version",
            field="version",
        )
    license = (license or "").strip() or DEFAULT_LICENSE
    if license not in SPDX_LICENSES:
        raise DomainError(
            f"{license!r} is not one of the SPDX licence identifiers a release may carry: {', '.join(SPDX_LICENSES)}.",
            code="invalid_license",
            field="license",
        )
    notes = (notes or "").strip()
    if len(notes) > NOTES_MAX:
        raise DomainError(f"Release notes are limited to {NOTES_MAX} characters.", code="too_long", field="notes")
    run = CurationRun.objects.select_for_update().get(pk=curation_run.pk)
    check_run_usable(run, dataset)
    if Release.objects.filter(dataset=dataset, version=version).exists():
        raise Conflict(
            f"{dataset.slug} already has a release {version}; choose another version.",
            code="duplicate_version",
            field="version",
        )
    try:
        with transaction.atomic():
            release = Release.objects.create(
                dataset=dataset,
                version=version,
                curation_run=run,
                created_by=created_by,
                notes=notes,
                license=license,
            )
    except IntegrityError:  # a concurrent create of the same version won the race
        raise Conflict(
            f"{dataset.slug} already has a release {version}; choose another version.",
            code="duplicate_version",
            field="version",
        )
    return release


def check_run_usable(run: CurationRun, dataset: Dataset) -> None:
    """A run of another dataset is bad input (400); a run not done (failed, unfinished, empty)
    is a state the request cannot change: 409, as for any other conflict with stored state."""
    if run.dataset_id != dataset.id:
        raise DomainError(
            f"Curation run #{run.pk} belongs to another dataset than {dataset.slug}.",
            code="curation_run_other_dataset",
            field="curation_run",
        )
    if run.status == CurationRun.Status.FAILED:
        raise Conflict(
            f"Curation run #{run.pk} failed ({run.error}); a release needs a done run.",
            code="curation_run_failed",
            field="curation_run",
        )
    if run.status != CurationRun.Status.DONE:
        raise Conflict(
            f"Curation run #{run.pk} is {run.status} ({run.processed}/{run.total}); wait until it is done.",
            code="curation_run_unfinished",
            field="curation_run",
        )
    if not CuratedImage.objects.filter(run=run).exists():
        raise Conflict(
            f"Curation run #{run.pk} has no curated images.", code="curation_run_empty", field="curation_run"
        )


def locked_release(release_id: int) -> Release:
    """The release, row-locked (select_for_update): the caller holds the transaction."""
    try:
        return Release.objects.select_for_update().select_related("dataset", "curation_run").get(pk=release_id)
    except Release.DoesNotExist:
        raise NotFound(f"No release {release_id}.")


@transaction.atomic
def release_publish(*, release_id: int, user: Any) -> Release:
    """Publish a built release after checking every file on disk against its checksum."""
    release = locked_release(release_id)
    if release.status == ReleaseStatus.PUBLISHED:
        raise ReleaseImmutable(f"Release {release.version} is already published.")
    if release.status != ReleaseStatus.BUILT:
        hint = {
            ReleaseStatus.DRAFT: "build it first",
            ReleaseStatus.BUILDING: "wait until the build finishes",
            ReleaseStatus.FAILED: f"its build failed ({release.error}); build it again",
        }.get(release.status, "")
        raise Conflict(f"Release {release.version} is {release.status}: {hint}.", code="not_built")
    for f in release.files.all():
        verify_release_file(release, f.name)
    verify_release_file(release, None)
    release.status = ReleaseStatus.PUBLISHED
    release.stage = "published"
    release.published_at = timezone.now()
    release.published_by = user
    release.save()
    return release
