"""Evaluations of models against a release's factor labels, and the paper's model zoo.

The per-image predictions are not rows here: each evaluation keeps one compact .npz under
MEDIA_ROOT (evaluation/storage.py); the database holds the parameters, coverage, status and
progress, and the metrics as JSON.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Dataset


class LabelSource(models.TextChoices):
    RELEASE = "release", "published release"
    CURATION_RUN = "curation_run", "curation run"
    TOOLKIT = "toolkit", "imagenet_x package (the toolkit's own files)"


class WhichFactor(models.TextChoices):
    TOP = "top", "top factor"
    MULTI = "multi", "all selected factors"


class Correctness(models.TextChoices):
    CLASS = "class", "class"
    REAL = "real_class", "ReaL labels"
    METACLASS = "metaclass", "meta-label"


class InputKind(models.TextChoices):
    CSV = "csv", "CSV (toolkit format)"
    ARRAY = "array", "logits / probabilities (.npz/.npy)"
    TESTBED = "testbed", "imagenet-testbed .pickle (command line)"
    REFERENCE = "reference", "reference model shipped with the platform"
    SCORING = "scoring", "scoring run of the prototype engine"


class EvaluationStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class EvaluationBatch(models.Model):
    """Many models evaluated by one task; progress on this row."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class Evaluation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="evaluations")
    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="evaluations")
    label_source = models.CharField(max_length=16, choices=LabelSource.choices, default=LabelSource.RELEASE)
    release = models.ForeignKey("exports.Release", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    curation_run = models.ForeignKey(
        "curation.CurationRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    split = models.CharField(max_length=8, default="val")
    which_factor = models.CharField(max_length=8, choices=WhichFactor.choices, default=WhichFactor.TOP)
    correctness = models.CharField(max_length=16, choices=Correctness.choices, default=Correctness.CLASS)
    filter_prototypes = models.BooleanField(default=True)
    toolkit_compatible = models.BooleanField(default=False)
    k_worst = models.PositiveIntegerField(default=100)
    input_kind = models.CharField(max_length=16, choices=InputKind.choices, default=InputKind.CSV)
    input_name = models.CharField(max_length=255, blank=True)
    input_sha256 = models.CharField(max_length=64, blank=True)
    predictions_path = models.CharField(max_length=500, blank=True, help_text="Relative to MEDIA_ROOT.")
    coverage = models.JSONField(default=dict)
    metrics = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING)
    error = models.TextField(blank=True)
    batch = models.ForeignKey(EvaluationBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    shared = models.BooleanField(
        default=False, help_text="Visible to every researcher, not only owner and maintainers."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(status="failed") | ~Q(error=""), name="failed_evaluation_has_reason"),
            models.CheckConstraint(
                condition=~Q(label_source="release") | Q(release__isnull=False), name="release_evaluation_has_release"
            ),
            models.CheckConstraint(
                condition=~Q(label_source="curation_run") | Q(curation_run__isnull=False),
                name="curation_evaluation_has_run",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def labels_description(self) -> str:
        if self.label_source == LabelSource.RELEASE and self.release_id:
            src = f"{self.dataset.slug} v{self.release.version}"
        elif self.label_source == LabelSource.CURATION_RUN:
            src = f"{self.dataset.slug} curation run #{self.curation_run_id}"
        else:
            src = "the imagenet_x package's annotations"
        return f"{src}, {self.split}, {self.get_which_factor_display()}"

    @property
    def primary(self) -> dict | None:
        return (self.metrics or {}).get("kinds", {}).get(self.correctness)


class EvaluationFigure(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="figures")
    key = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    png = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    svg = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")

    class Meta:
        ordering = ["evaluation_id", "id"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "key"], name="one_figure_per_key")]


class ZooModel(models.Model):
    """One row of the toolkit's published accuracies_per_factor.csv (the paper's ~2,500 models)."""

    group = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    which_factor = models.CharField(max_length=8, choices=WhichFactor.choices)
    correctness = models.CharField(max_length=16, choices=Correctness.choices)
    accuracies = models.JSONField(help_text="factor key -> accuracy")
    average = models.FloatField()
    worst_factor = models.FloatField(null=True)
    worst_100_classes = models.FloatField(null=True)

    class Meta:
        ordering = ["group", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "name", "which_factor", "correctness"], name="zoo_model_unique")
        ]
        indexes = [models.Index(fields=["which_factor", "correctness", "group"])]
