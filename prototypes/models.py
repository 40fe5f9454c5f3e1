"""Prototype runs: what produced the prototypes the annotation form shows.

A run records everything needed to reproduce and judge it (model, weights and their sha256,
preprocessing, device, dtype, batch size, library versions, images scored and skipped with
reasons, wall time, images/s). One run per dataset is current; the form reads only that one
(prototypes/selectors.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    MERGING = "merging", "merging"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class RunSource(models.TextChoices):
    MODEL = "model", "model run"
    PREDICTIONS = "predictions", "predictions file"


class PrototypeRun(models.Model):
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="prototype_runs")
    source = models.CharField(max_length=16, choices=RunSource.choices, default=RunSource.MODEL)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    is_current = models.BooleanField(default=False)
    make_current = models.BooleanField(default=True, help_text="Become the dataset's current run when done.")
    error = models.TextField(blank=True)

    # What was asked for.
    model_name = models.CharField(max_length=100, blank=True)
    weights = models.CharField(max_length=100, blank=True, help_text="Enum member name, or 'none' for random init.")
    checkpoint = models.CharField(max_length=500, blank=True)
    seed = models.IntegerField(default=0)
    image_size = models.PositiveIntegerField(null=True, blank=True, help_text="Crop size override; blank = weights'.")
    k = models.PositiveSmallIntegerField(default=3)
    fill_incorrect = models.BooleanField(default=False)
    split = models.CharField(max_length=8, blank=True, help_text="Only this split; blank = all images with a file.")
    predictions_file = models.CharField(max_length=500, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="device, batch size, workers, dtype, decode asked.")

    # What it was, as measured.
    weights_id = models.CharField(max_length=200, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    preprocessing = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=100, blank=True)
    dtype = models.CharField(max_length=16, blank=True)
    batch_size = models.PositiveIntegerField(null=True, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    resolved = models.JSONField(default=dict, blank=True, help_text="Workers, threads, decode path actually used.")

    # Progress and results (updated on this row while it runs).
    images_total = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0, help_text="Scored + skipped so far.")
    images_scored = models.PositiveIntegerField(default=0)
    images_skipped = models.PositiveIntegerField(default=0)
    skipped_reasons = models.JSONField(default=dict, blank=True, help_text="Reason kind -> count.")
    conversions = models.JSONField(default=dict, blank=True, help_text="Conversion -> count (grayscale, CMYK...).")
    short_classes = models.JSONField(default=dict, blank=True, help_text="Class index -> correct count, when < k.")
    wall_s = models.FloatField(null=True, blank=True, help_text="Sum of shard scoring times.")
    images_per_s = models.FloatField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset"], condition=Q(is_current=True), name="one_current_run_per_dataset"
            ),
            models.CheckConstraint(condition=Q(is_current=False) | Q(status="done"), name="current_run_is_done"),
            models.CheckConstraint(condition=Q(k__gte=1), name="prototype_run_k_positive"),
            models.CheckConstraint(
                condition=Q(images_done__lte=models.F("images_total")) | Q(images_total=0),
                name="prototype_run_progress_le_total",
            ),
        ]

    def __str__(self) -> str:
        return f"prototype run {self.pk} ({self.dataset_id}, {self.model_name or self.source})"

    @property
    def random_weights(self) -> bool:
        return self.source == RunSource.MODEL and not self.checkpoint and self.weights.lower() in ("", "none")


class ShardStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"


class PrototypeShard(models.Model):
    """A contiguous slice (by image id) of a run's images, scored by one task.

    A finished shard keeps its top-k state (JSON, size classes x k, not images), so a run
    interrupted by a crash resumes with only the unfinished shards.
    """

    run = models.ForeignKey(PrototypeRun, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    first_image_id = models.BigIntegerField()
    last_image_id = models.BigIntegerField()
    images_total = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ShardStatus.choices, default=ShardStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0)
    state = models.JSONField(null=True, blank=True)
    scored = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    conversions = models.JSONField(default=dict, blank=True)
    wall_s = models.FloatField(null=True, blank=True)
    resolved = models.JSONField(default=dict, blank=True)
    # Written with each progress update: a running shard whose heartbeat is old was orphaned.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="prototype_shard_index_unique"),
            models.CheckConstraint(
                condition=Q(first_image_id__lte=models.F("last_image_id")), name="prototype_shard_range_ordered"
            ),
            models.CheckConstraint(condition=~Q(status="done") | Q(state__isnull=False), name="done_shard_has_state"),
        ]


class Prototype(models.Model):
    run = models.ForeignKey(PrototypeRun, on_delete=models.CASCADE, related_name="prototypes")
    image_class = models.ForeignKey("catalog.ImageClass", on_delete=models.CASCADE, related_name="prototypes")
    image = models.ForeignKey("catalog.Image", on_delete=models.CASCADE, related_name="prototype_of")
    rank = models.PositiveSmallIntegerField(help_text="1 = most confident.")
    probability = models.FloatField(help_text="Predicted probability of the predicted class.")
    true_class_probability = models.FloatField(null=True, blank=True)
    predicted_class = models.IntegerField()
    filled = models.BooleanField(default=False, help_text="Not classified correctly: filled by --fill-incorrect.")

    class Meta:
        ordering = ["run_id", "image_class_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "image_class", "rank"], name="prototype_rank_unique"),
            models.UniqueConstraint(fields=["run", "image"], name="prototype_image_once_per_run"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="prototype_rank_positive"),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1), name="prototype_probability_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} #{self.rank} of class {self.image_class_id} (run {self.run_id})"


class PrototypeSkip(models.Model):
    """An image a run could not score, with the reason (truncated, CMYK decode failure, ...)."""

    run = models.ForeignKey(PrototypeRun, on_delete=models.CASCADE, related_name="skips")
    image = models.ForeignKey("catalog.Image", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    file_name = models.CharField(max_length=255)
    reason = models.CharField(max_length=1000)

    class Meta:
        ordering = ["run_id", "file_name"]
        constraints = [models.UniqueConstraint(fields=["run", "file_name"], name="prototype_skip_once_per_run")]
