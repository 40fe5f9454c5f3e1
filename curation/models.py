"""Curation runs and their per-image results (the contract exports read).

A run is `done` only when every result is stored; results are snapshots of the final
annotation at curation time so that a release built from a run never changes afterwards.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Dataset, FactorFlags, FactorKey, Image


class CurationRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="curation_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField(default=dict, help_text="spaCy model and version, texts, factor texts, selector...")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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

    class Meta:
        ordering = ["run_id", "image_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "image"], name="one_result_per_image_per_run"),
            models.CheckConstraint(
                condition=Q(top_factor="") | Q(top_factor__in=FACTOR_KEYS), name="curated_top_factor_is_a_factor"
            ),
        ]
