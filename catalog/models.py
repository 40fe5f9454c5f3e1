"""Catalogue: datasets, classes, images, and the annotation record every app shares.

Models own invariants (fields, constraints, small derived properties), not workflows:
writes live in services.py, reads in selectors.py.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.factors import FACTOR_KEYS, FACTORS, META_LABELS


class Split(models.TextChoices):
    TRAIN = "train", "train"
    VAL = "val", "val"


# Functional TextChoices take (member name, (value, label)) pairs.
MetaLabel = models.TextChoices("MetaLabel", [(m.upper(), (m, m.replace("_", " "))) for m in META_LABELS])
FactorKey = models.TextChoices("FactorKey", [(f.key.upper(), (f.key, f.wording)) for f in FACTORS])


class Dataset(models.Model):
    slug = models.SlugField(unique=True, max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Folder the images' relative paths start from; blank when no files are stored
    # (e.g. the ImageNet-X release, which ships annotations but no pixels).
    root = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ImageClass(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="classes")
    index = models.PositiveIntegerField(help_text="Class index as the classifier numbers it (ImageNet: 0-999).")
    wnid = models.CharField("WordNet id", max_length=32, blank=True)
    name = models.CharField(max_length=200)
    meta_label = models.CharField(max_length=32, choices=MetaLabel.choices, default="other")
    # Where the meta-label came from: the release mapping, WordNet hypernyms or a maintainer.
    meta_label_source = models.CharField(max_length=32, default="release")

    class Meta:
        verbose_name_plural = "image classes"
        ordering = ["dataset_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "index"], name="class_index_unique_per_dataset"),
        ]

    def __str__(self) -> str:
        return f"{self.index}: {self.name}"


class Image(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    split = models.CharField(max_length=8, choices=Split.choices)
    image_class = models.ForeignKey(ImageClass, on_delete=models.PROTECT, related_name="images")
    file_name = models.CharField(max_length=255, help_text="As the dataset names it, e.g. ILSVRC2012_val_00004487.JPEG")
    relpath = models.CharField(
        max_length=500, blank=True, help_text="Path under the dataset root; blank = no stored file."
    )
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    readable = models.BooleanField(null=True, help_text="None = not checked (no file); False = see unreadable_reason.")
    unreadable_reason = models.CharField(max_length=500, blank=True)
    # Demo variants derived from a photo by a known transform: the factors known by
    # construction (gold answers for qualification and quality checks).
    known_factors = models.JSONField(null=True, blank=True)
    derived_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="variants")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "split", "file_name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "file_name"], name="image_file_name_unique_per_dataset"),
            models.CheckConstraint(
                condition=Q(readable=True) | Q(readable__isnull=True) | ~Q(unreadable_reason=""),
                name="unreadable_image_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "split", "image_class"]),
            # The queue's stand-in prototypes while a dataset has no prototype run: the first
            # images of the class by name (prototypes.selectors), k rows read, not the class.
            models.Index(
                fields=["image_class", "file_name"],
                condition=Q(readable=True) & ~Q(relpath=""),
                name="image_stand_in_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.file_name

    @property
    def has_file(self) -> bool:
        return bool(self.relpath)

    @property
    def path(self) -> Path | None:
        if not self.relpath:
            return None
        return Path(self.dataset.root) / self.relpath


class ReferencePrototype(models.Model):
    """Prototype file names published with a release (e.g. ImageNet-X's prototypical_paths.csv).

    Kept as a reference; the platform's own prototypes are PrototypeRun results.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="reference_prototypes")
    image_class = models.ForeignKey(ImageClass, on_delete=models.CASCADE, related_name="reference_prototypes")
    file_name = models.CharField(max_length=255)
    position = models.PositiveIntegerField(help_text="Line order in the published file.")
    source_release = models.CharField(max_length=100)

    class Meta:
        ordering = ["dataset_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "file_name", "source_release"], name="reference_prototype_unique"
            ),
        ]


# --- The annotation record --------------------------------------------------------------
def _factor_flag_fields() -> dict[str, models.Field]:
    return {
        f.key: models.BooleanField(f.wording, default=False, help_text=f.definition, db_index=False) for f in FACTORS
    }


class _FactorFlagsMeta:
    abstract = True


# One boolean column per factor: the database counts images per factor
# (COUNT(*) FILTER (WHERE pose)) and per factor pair (FILTER (WHERE pose AND background))
# in one aggregate query, without loading rows into Python. Built from FACTORS so that the
# list is spelled in one place only.
FactorFlags = type(
    "FactorFlags",
    (models.Model,),
    {"__module__": __name__, "Meta": _FactorFlagsMeta, **_factor_flag_fields()},
)


class AnnotationSource(models.TextChoices):
    USER = "user", "annotator"
    IMPORTED = "imported", "imported release"
    CONSENSUS = "consensus", "adjudicated consensus"  # settled from several annotators' answers


class AnnotationStatus(models.TextChoices):
    SUBMITTED = "submitted", "submitted"  # waiting for (or not sampled for) review
    ACCEPTED = "accepted", "accepted"  # a reviewer accepted it; imported records start here
    REJECTED = "rejected", "rejected"  # back to its annotator with a comment
    CORRECTED = "corrected", "corrected"  # a reviewer's edit became the current version
    SUPERSEDED = "superseded", "superseded"  # replaced by an adjudicated consensus


class Annotation(FactorFlags):
    """One person's (or one imported release's) answer for one image: the current version.

    Every version is kept in AnnotationVersion; this row holds the latest.
    """

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="annotations")
    source = models.CharField(max_length=16, choices=AnnotationSource.choices, default=AnnotationSource.USER)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations"
    )
    source_release = models.CharField(max_length=100, blank=True, help_text="For imported records: which release.")
    nothing_differs = models.BooleanField(
        default=False, help_text="The annotator said explicitly that no factor differs."
    )
    justification = models.TextField(blank=True)
    one_word = models.CharField(max_length=300, blank=True)
    # The one ticked factor the annotator (or a correcting reviewer) named as the main
    # difference, where the campaign asks for it; curation uses it as the image's top factor.
    main_factor = models.CharField(max_length=32, choices=FactorKey.choices, blank=True)
    status = models.CharField(max_length=16, choices=AnnotationStatus.choices, default=AnnotationStatus.SUBMITTED)
    version = models.PositiveIntegerField(default=1)
    time_on_task_ms = models.PositiveIntegerField(null=True, blank=True)
    # For imported records: the top factor the release published (a reference label, never
    # our own curation result).
    reference_top_factor = models.CharField(max_length=32, choices=FactorKey.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "annotator"],
                condition=Q(annotator__isnull=False),
                name="one_annotation_per_annotator_image",
            ),
            models.UniqueConstraint(
                fields=["image", "source_release"],
                condition=Q(source="imported"),
                name="one_imported_annotation_per_release_image",
            ),
            models.UniqueConstraint(fields=["image"], condition=Q(source="consensus"), name="one_consensus_per_image"),
            models.CheckConstraint(
                condition=Q(source__in=["imported", "consensus"], annotator__isnull=True)
                | Q(source="user", annotator__isnull=False),
                name="annotation_source_matches_annotator",
            ),
            models.CheckConstraint(
                condition=Q(reference_top_factor="") | Q(reference_top_factor__in=FACTOR_KEYS),
                name="reference_top_factor_is_a_factor",
            ),
            models.CheckConstraint(
                condition=Q(main_factor="") | Q(main_factor__in=FACTOR_KEYS), name="main_factor_is_a_factor"
            ),
        ]
        indexes = [
            models.Index(fields=["image", "status"]),
            # Answers waiting for review, oldest first: the audit queue samples the first of them
            # without reading those already reviewed (review.selectors.queue).
            models.Index(
                fields=["created_at", "id"],
                condition=Q(source="user", status="submitted"),
                name="annotation_awaiting_review_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} of {self.image_id} v{self.version}"

    @property
    def selected_factors(self) -> list[str]:
        return [k for k in FACTOR_KEYS if getattr(self, k)]

    def flags(self) -> dict[str, bool]:
        return {k: bool(getattr(self, k)) for k in FACTOR_KEYS}

    def snapshot(self) -> dict:
        """JSON-safe content of this version (what AnnotationVersion stores)."""
        return {
            "factors": self.selected_factors,
            "nothing_differs": self.nothing_differs,
            "justification": self.justification,
            "one_word": self.one_word,
            "main_factor": self.main_factor,
            "status": self.status,
        }


class AppendOnlyError(RuntimeError):
    """Someone tried to rewrite or delete an append-only record."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} is append-only: rows cannot be updated")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} is append-only: rows cannot be deleted")

    _raw_delete = delete


class AppendOnlyModel(models.Model):
    """A history record: the model refuses save() of an existing row and delete() (also through
    querysets); on PostgreSQL a trigger refuses UPDATE and DELETE as well (catalog migration
    0005 for AnnotationVersion, review migration 0002 for review's records). TRUNCATE (test
    teardown) is a different trigger event and stays possible for the database owner."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} is append-only: row {self.pk} cannot be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} is append-only: row {self.pk} cannot be deleted")


class AnnotationVersion(AppendOnlyModel):
    """Append-only history of an annotation: one row per version, never updated.

    Rows are written only by catalog.services.annotation_version_append (and, in bulk, by the
    release import through annotation_versions_import).
    """

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    data = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=64, default="create")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "version"], name="annotation_version_unique"),
        ]
