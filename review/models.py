"""Review and quality: review decisions, the append-only audit trail, adjudications,
consistency flags and the audit-sampling settings.

Append-only records (AuditEvent, ReviewDecision, AdjudicationRecord; the base classes live in
catalog.models next to AnnotationVersion, which is guarded the same way) refuse to be rewritten in
two layers: the model refuses save() on an existing row and delete() (also through querysets),
and on PostgreSQL a trigger (migration 0002) refuses UPDATE and DELETE of any row, so that not
even raw SQL from the application rewrites history. TRUNCATE (used by test teardown) is a
different trigger event and stays possible for the database owner.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AppendOnlyError, AppendOnlyModel, AppendOnlyQuerySet, FactorKey, Image  # noqa: F401 - re-exported (review's records use them)


class AuditAction(models.TextChoices):
    CREATE = "create", "created"
    EDIT = "edit", "edited by its annotator"
    ACCEPT = "accept", "accepted"
    REJECT = "reject", "rejected"
    CORRECT = "correct", "corrected by a reviewer"
    ADJUDICATE = "adjudicate", "adjudicated"
    AUTO_ACCEPT = "auto_accept", "accepted automatically (full agreement)"
    SUPERSEDE = "supersede", "superseded by the consensus"
    FLAG = "flag", "flagged (text and ticks disagree)"


class AuditEvent(AppendOnlyModel):
    """One thing that happened to an image's annotations: who, when, what, before and after."""

    # PROTECT: an image or annotation with history cannot be deleted by the application.
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="audit_events")
    annotation = models.ForeignKey(
        Annotation, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["image_id", "created_at", "id"]
        indexes = [models.Index(fields=["image", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} on image {self.image_id} by {self.actor_id}"


class ReviewAction(models.TextChoices):
    ACCEPT = "accept", "accept"
    REJECT = "reject", "reject"
    CORRECT = "correct", "correct"


class ReviewDecision(AppendOnlyModel):
    """A reviewer's verdict on one version of one annotation."""

    annotation = models.ForeignKey(Annotation, on_delete=models.PROTECT, related_name="review_decisions")
    # The version the reviewer looked at (the optimistic-lock token the request carried).
    reviewed_version = models.PositiveIntegerField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions")
    action = models.CharField(max_length=16, choices=ReviewAction.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One verdict per version: the second of two racing reviewers cannot add a second one.
            models.UniqueConstraint(fields=["annotation", "reviewed_version"], name="one_decision_per_version"),
            models.CheckConstraint(condition=~Q(action="reject") | ~Q(comment=""), name="reject_needs_comment"),
        ]


class AdjudicationMethod(models.TextChoices):
    AUTO = "auto", "full agreement, accepted automatically"
    REVIEWER = "reviewer", "settled by a reviewer"


class AdjudicationRecord(AppendOnlyModel):
    """How an image's consensus was reached: the votes, the rule, the undecided factors, the result."""

    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="adjudications")
    consensus = models.ForeignKey(Annotation, on_delete=models.PROTECT, related_name="adjudications")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    method = models.CharField(max_length=16, choices=AdjudicationMethod.choices)
    threshold = models.FloatField()
    # {"<annotation id>": {"annotator": id, "version": n, "factors": [...]}}
    votes = models.JSONField()
    proposed = models.JSONField(help_text="Factors the consensus rule selected.")
    undecided = models.JSONField(help_text="Factors the rule could not settle (ties, no qualified majority).")
    result = models.JSONField(help_text="The settled factors.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["image"], name="one_adjudication_per_image")]


class FlagKind(models.TextChoices):
    MENTIONS_UNTICKED = "mentions_unticked", "text mentions a factor that is not ticked"
    CONTRADICTS_TICKED = "contradicts_ticked", "text contradicts a ticked factor"


class ConsistencyFlag(models.Model):
    """The justification and the ticked factors disagree (consistency.py says how this is decided)."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="consistency_flags")
    # Flags describe one version: once the annotation changes they no longer apply.
    annotation_version = models.PositiveIntegerField()
    kind = models.CharField(max_length=24, choices=FlagKind.choices)
    factor = models.CharField(max_length=32, choices=FactorKey.choices)
    reason = models.CharField(max_length=500)
    evidence = models.CharField(max_length=200, blank=True, help_text="The words of the text that triggered it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "annotation_version", "kind", "factor"], name="one_flag_per_version_kind_factor"
            ),
            models.CheckConstraint(condition=Q(factor__in=FACTOR_KEYS), name="flag_factor_is_a_factor"),
        ]


class AuditSettings(models.Model):
    """Audit sampling and adjudication knobs (one row, pk=1; edited in the admin)."""

    base_rate = models.FloatField(
        default=0.10,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of an annotator's annotations sampled for audit.",
    )
    new_annotator_rate = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Rate while the annotator is new.",
    )
    new_annotator_until = models.PositiveIntegerField(
        default=50, help_text="An annotator counts as new until this many submitted annotations."
    )
    low_gold_rate = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Rate for annotators whose gold accuracy is low.",
    )
    low_gold_below = models.FloatField(default=0.7, help_text="Gold accuracy below this counts as low.")
    # Majority by default: a factor is settled when more than this share of the annotators agree
    # on it (0.5 = strict majority; 2/3 = two thirds; ties always go to a reviewer).
    consensus_threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.5), MaxValueValidator(0.99)],
        help_text="A factor is settled when more than this share of the answers agree (0.5 = strict majority).",
    )
    auto_accept_full_agreement = models.BooleanField(
        default=True, help_text="Images whose annotators agree on every factor get their consensus without a reviewer."
    )
    min_annotations = models.PositiveIntegerField(
        default=2,
        validators=[MinValueValidator(2)],
        help_text="Answers an image needs before its full agreement is accepted (at least its campaign's planned copies).",
    )
    seed = models.PositiveIntegerField(default=1, help_text="Changes which annotations the sampling picks.")

    class Meta:
        verbose_name_plural = "audit settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(base_rate__gte=0, base_rate__lte=1)
                & Q(new_annotator_rate__gte=0, new_annotator_rate__lte=1)
                & Q(low_gold_rate__gte=0, low_gold_rate__lte=1),
                name="audit_rates_are_shares",
            ),
            models.CheckConstraint(
                condition=Q(consensus_threshold__gte=0.5, consensus_threshold__lt=1), name="consensus_threshold_range"
            ),
            models.CheckConstraint(condition=Q(min_annotations__gte=2), name="multi_needs_two"),
        ]

    @classmethod
    def current(cls) -> AuditSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


def _tally_yes_fields() -> dict[str, models.Field]:
    return {f"{k}_yes": models.PositiveIntegerField(default=0) for k in FACTOR_KEYS}


# The per-factor "yes" counters, one column per factor, built from FACTOR_KEYS (one spelling).
_ImageTallyFactors = type(
    "_ImageTallyFactors",
    (models.Model,),
    {"__module__": __name__, "Meta": type("Meta", (), {"abstract": True}), **_tally_yes_fields()},
)


class ImageTally(_ImageTallyFactors):
    """An image's live annotator answers counted: how many, how many ticked each factor, on how
    many factors they disagree, and whether a consensus settled it.

    Kept by database triggers on catalog_annotation (migration 0004), in the transaction that
    writes the annotation, whichever code path (service, admin, bulk insert, raw SQL) wrote it:
    each insert, update or delete of a user or consensus answer recounts that image's few rows.
    The audit queue and auto-acceptance read these rows instead of grouping every answer of the
    dataset, so their cost does not grow with the campaign. "Live" = source user, not superseded
    (the same answers `multi_annotated_images` has always counted). `review_tally_rebuild`
    recounts everything (after a restore, or to check the triggers).
    """

    image = models.OneToOneField(Image, primary_key=True, on_delete=models.CASCADE, related_name="review_tally")
    n = models.PositiveIntegerField(default=0, help_text="Live annotator answers.")
    n_disagree = models.PositiveIntegerField(default=0, help_text="Factors the live answers do not agree on.")
    has_consensus = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # The audit queue's disputes, in image order; only the images still waiting for a
            # reviewer are in it, so it stays small however many are settled.
            models.Index(
                fields=["image"],
                condition=Q(n_disagree__gt=0, has_consensus=False),
                name="tally_disputed_idx",
            ),
            # Candidates for automatic acceptance (full agreement, two or more answers).
            models.Index(
                fields=["image"],
                condition=Q(n_disagree=0, has_consensus=False, n__gte=2),
                name="tally_agreeing_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.image_id}: {self.n} answers, {self.n_disagree} disputed factors"


class QualitySnapshot(models.Model):
    """A computed quality report, kept so that the dashboard opens in constant time.

    One row per filter (`key`). The report is computed by a worker (review.quality_report_refresh)
    from every answer, which takes seconds at ImageNet size; the dashboard shows the stored one
    with its age and asks for a new one when answers or decisions changed since (`watermark`).
    """

    key = models.CharField(max_length=200, unique=True)
    report = models.JSONField()
    # What the report was computed from: the newest AnnotationVersion id and ReviewDecision id
    # (every annotation write appends a version; both are primary-key lookups).
    watermark = models.CharField(max_length=64)
    computed_at = models.DateTimeField()
    seconds = models.FloatField(help_text="How long the computation took.")
    refresh_requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"quality report {self.key or '(all)'} at {self.computed_at:%Y-%m-%d %H:%M}"
