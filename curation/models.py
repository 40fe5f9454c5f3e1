"""Curation runs and their per-image results (the contract exports read).

A run is `done` only when every result is stored; results are snapshots of the final
annotation at curation time so that a release built from a run never changes afterwards.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Annotation, Dataset, FactorFlags, FactorKey, Image


class CurationRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="curation_runs")
    # Optional scope inside the dataset: one split, or the images of one annotation campaign.
    split = models.CharField(max_length=8, blank=True)
    # PROTECT, not SET_NULL: the campaign is part of what the run (and any release built from it)
    # describes; nulling it would silently turn a one-campaign run into a whole-dataset one.
    campaign = models.ForeignKey(
        "annotator.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="curation_runs"
    )
    # The learned selector's stored model when params["selector"] == "learned".
    selector_model = models.ForeignKey(
        "SelectorModel", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField(default=dict, help_text="spaCy model and version, texts, factor texts, selector...")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(status="failed") | ~Q(error=""), name="failed_run_has_reason"),
        ]

    def __str__(self) -> str:
        return f"curation run {self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 0.0


class CuratedImage(FactorFlags):
    """One image's curated answer in one run: its factor flags, texts and chosen top factor."""

    run = models.ForeignKey(CurationRun, on_delete=models.CASCADE, related_name="results")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    annotation = models.ForeignKey(Annotation, null=True, on_delete=models.SET_NULL, related_name="+")
    justification = models.TextField(blank=True)
    one_word = models.CharField(max_length=300, blank=True)
    top_factor = models.CharField(max_length=32, choices=FactorKey.choices, blank=True)
    # Snapshots used by the statistics (and by exports) so they never join back to the catalogue.
    split = models.CharField(max_length=8, blank=True)
    meta_label = models.CharField(max_length=32, default="other")
    text_has_vector = models.BooleanField(default=True)

    class Meta:
        ordering = ["run_id", "image_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "image"], name="one_result_per_image_per_run"),
            models.CheckConstraint(condition=Q(meta_label__in=META_LABELS), name="curated_meta_label_is_known"),
            models.CheckConstraint(
                condition=Q(top_factor="") | Q(top_factor__in=FACTOR_KEYS), name="curated_top_factor_is_a_factor"
            ),
        ]


class CurationChunk(models.Model):
    """One slice of a run's final annotations, processed by one Celery task.

    The annotation ids are frozen when the run is planned so that a retried or redelivered
    chunk processes exactly the same rows; a chunk is `done` only together with its results
    (same transaction), which makes re-running it a no-op.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    run = models.ForeignKey(CurationRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    annotation_ids = models.JSONField(default=list)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="one_chunk_per_index_per_run"),
        ]


class SelectorModel(models.Model):
    """A trained learned selector: versioned per name, file under MEDIA_ROOT, never overwritten."""

    name = models.CharField(max_length=64, default="learned")
    version = models.PositiveIntegerField()
    path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64)
    params = models.JSONField(default=dict, help_text="Training data (dataset, split), texts, model and its settings.")
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="selector_model_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class CurationFigure(models.Model):
    """A rendered figure of a run (PNG and SVG under MEDIA_ROOT/curation/runs/<run>/)."""

    run = models.ForeignKey(CurationRun, on_delete=models.CASCADE, related_name="figures")
    key = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    png = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    svg = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="one_figure_per_key_per_run"),
        ]
