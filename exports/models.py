"""Releases: versioned, immutable dataset releases and the files they ship.

Once a release is published nothing about it may change. The rule is enforced twice, below
the views: here in the model layer (save/delete and queryset update/delete raise
ReleaseImmutable) and in PostgreSQL by a trigger (migration 0002) that refuses UPDATE and
DELETE of a published release and of its files, so that raw SQL, another app or a shell
cannot change a published release either.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from catalog.models import Dataset
from infra.errors import Conflict

# Semantic Versioning 2.0.0 (semver.org), without the leading "v" people often write.
SEMVER_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
SEMVER_RE = re.compile(SEMVER_PATTERN)
semver_validator = RegexValidator(SEMVER_PATTERN, "Give a semantic version such as 1.0.0 or 1.1.0-rc.1.")


class ReleaseImmutable(Conflict):
    code = "release_immutable"


class ReleaseStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    BUILDING = "building", "building"
    BUILT = "built", "built (not published)"
    PUBLISHED = "published", "published"
    FAILED = "failed", "failed"


def _refuse(what: str) -> ReleaseImmutable:
    return ReleaseImmutable(f"{what} is published and cannot be changed; publish a new version instead.")


def _stored_published(release_id: int | None) -> bool:
    # The stored state decides, not the in-memory one: publishing (built -> published) is the
    # last save allowed; anything after it is refused.
    return release_id is not None and Release.objects.filter(pk=release_id, status=ReleaseStatus.PUBLISHED).exists()


class ReleaseQuerySet(models.QuerySet):
    # Bulk update()/delete() skip save()/delete(): guard them too, so the model layer has no hole.
    def update(self, **kwargs):
        if self.filter(status=ReleaseStatus.PUBLISHED).exists():
            raise _refuse("A release in this selection")
        return super().update(**kwargs)

    def delete(self):
        if self.filter(status=ReleaseStatus.PUBLISHED).exists():
            raise _refuse("A release in this selection")
        return super().delete()


class Release(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="releases")
    version = models.CharField(max_length=64, validators=[semver_validator])
    notes = models.TextField(blank=True)
    license = models.CharField(max_length=64, default="CC-BY-NC-4.0", help_text="SPDX identifier.")
    curation_run = models.ForeignKey("curation.CurationRun", on_delete=models.PROTECT, related_name="releases")
    # The prototype run whose images the release's prototypical_paths.csv lists and its datasheet
    # describes; set by each build (NULL: the prototypes came from a source release or were
    # stand-ins, or the release was built before this field existed). PROTECT, not SET_NULL: a
    # published release is immutable, so what it describes must not vanish (and SET_NULL would be
    # an UPDATE of a published row, which the trigger of migration 0002 refuses anyway).
    prototype_run = models.ForeignKey(
        "prototypes.PrototypeRun", null=True, blank=True, on_delete=models.PROTECT, related_name="releases"
    )
    status = models.CharField(max_length=16, choices=ReleaseStatus.choices, default=ReleaseStatus.DRAFT)
    error = models.TextField(blank=True)
    # Progress of the build, on the release's own row (the database is the source of truth).
    stage = models.CharField(max_length=64, blank=True)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # Each build attempt gets a fresh token; a worker only commits its result while the token is
    # still the release's (a retried build makes an older, presumed-dead attempt harmless).
    build_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The archive, relative to MEDIA_ROOT.
    archive_path = models.CharField(max_length=500, blank=True)
    archive_sha256 = models.CharField(max_length=64, blank=True)
    archive_size = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        ordering = ["dataset_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="release_version_unique_per_dataset"),
            models.CheckConstraint(condition=Q(version__regex=SEMVER_PATTERN), name="release_version_is_semver"),
            models.CheckConstraint(condition=~Q(status="failed") | ~Q(error=""), name="failed_release_has_reason"),
            models.CheckConstraint(
                condition=~Q(status__in=["built", "published"]) | (~Q(archive_sha256="") & ~Q(archive_path="")),
                name="built_release_has_archive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if _stored_published(self.pk):
            raise _refuse(f"Release {self.version}")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if _stored_published(self.pk):
            raise _refuse(f"Release {self.version}")
        return super().delete(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.status == ReleaseStatus.PUBLISHED

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 0.0

    @property
    def base_name(self) -> str:
        return f"{self.dataset.slug}-{self.version}"


class ReleaseFileQuerySet(models.QuerySet):
    def update(self, **kwargs):
        if self.filter(release__status=ReleaseStatus.PUBLISHED).exists():
            raise _refuse("The release of a file in this selection")
        return super().update(**kwargs)

    def delete(self):
        if self.filter(release__status=ReleaseStatus.PUBLISHED).exists():
            raise _refuse("The release of a file in this selection")
        return super().delete()


class ReleaseFile(models.Model):
    """One file of a release (inside its archive and downloadable alone), with its checksum."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()

    objects = ReleaseFileQuerySet.as_manager()

    class Meta:
        ordering = ["release_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["release", "name"], name="release_file_name_unique"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="release_file_sha256_hex"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if _stored_published(self.release_id):
            raise _refuse("The release of this file")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if _stored_published(self.release_id):
            raise _refuse("The release of this file")
        return super().delete(*args, **kwargs)
