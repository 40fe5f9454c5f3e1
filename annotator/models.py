"""Annotation campaigns, the task queue (leases), qualification and gold items.

Models own invariants (constraints, small derived properties); the queue's workflow lives in
services.py and its reads in selectors.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset, Image, ImageClass, Split


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"
    DONE = "done", "done"


class Campaign(models.Model):
    """A set of images to annotate, with its overlap (multi-review) and quality settings."""

    name = models.CharField(max_length=200, unique=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="campaigns")
    split = models.CharField(max_length=8, choices=Split.choices, blank=True, help_text="Blank = every split.")
    classes = models.ManyToManyField(ImageClass, blank=True, related_name="campaigns", help_text="Empty = every class.")
    sample_size = models.PositiveIntegerField(null=True, blank=True, help_text="Random sample of this many images.")
    seed = models.IntegerField(default=0, help_text="Seed of the sample and of the queue order.")
    # ImageNet-X had a subset annotated by several people to measure agreement: e.g. 10 % x 3.
    overlap_fraction = models.FloatField(default=0.1)
    overlap_copies = models.PositiveSmallIntegerField(default=3)
    lease_minutes = models.PositiveIntegerField(default=15)
    # Gold items mixed into the real work, as a probability per "next".
    gold_rate = models.FloatField(default=0.05)
    # Qualification passes when the micro-averaged F1 over the factors of the qualification
    # answers reaches this threshold.
    qualification_threshold = models.FloatField(default=0.5)
    # The form asks which ticked factor is the main one (curation's top factor). On for new
    # campaigns; campaigns created before the setting existed keep their form (migration 0003).
    ask_main_factor = models.BooleanField(
        default=True, help_text="The form asks which of the ticked factors is the main one."
    )
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Stored counters, so progress costs one row however large the campaign (summing 60,000
    # items on every `next` was PostgreSQL's largest cost there). Set at creation; n_done is
    # incremented in the same transaction as the item's n_done (services.submissions), the
    # only place an answer is counted; campaign_counters_recount repairs them from the items.
    n_items = models.PositiveIntegerField(default=0)
    n_overlap_items = models.PositiveIntegerField(default=0)
    n_planned = models.PositiveIntegerField(default=0)
    n_done = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(overlap_fraction__gte=0) & Q(overlap_fraction__lte=1), name="campaign_overlap_fraction_0_1"
            ),
            models.CheckConstraint(condition=Q(overlap_copies__gte=2), name="campaign_overlap_copies_at_least_2"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="campaign_gold_rate_0_1"),
            models.CheckConstraint(
                condition=Q(qualification_threshold__gte=0) & Q(qualification_threshold__lte=1),
                name="campaign_qualification_threshold_0_1",
            ),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="campaign_lease_at_least_1_minute"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignItem(models.Model):
    """One image of a campaign and how many independent annotations it should get."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="campaign_items")
    planned = models.PositiveSmallIntegerField(default=1)
    # Submitted annotations counted so far; written only under this row's lock (services).
    n_done = models.PositiveSmallIntegerField(default=0)
    # Shuffled queue order, so overlap images are spread among the others and look alike.
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["campaign_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "image"], name="campaign_item_unique_image"),
            models.CheckConstraint(condition=Q(planned__gte=1), name="campaign_item_planned_at_least_1"),
            models.CheckConstraint(condition=Q(n_done__lte=F("planned")), name="campaign_item_never_over_planned"),
        ]
        indexes = [
            # The queue scans a campaign's open items in queue order, (position, id): with the id
            # in the index the scan yields rows in the query's full ORDER BY and stops at the first
            # row that passes; without it PostgreSQL sorted batches of 32 rows by id, running the
            # queue's per-row checks on all 32 for every `next`.
            models.Index(
                fields=["campaign", "position", "id"], condition=Q(n_done__lt=F("planned")), name="item_open_order_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.image_id} ({self.n_done}/{self.planned})"

    @property
    def is_overlap(self) -> bool:
        return self.planned > 1


class GoldKind(models.TextChoices):
    QUALIFICATION = "qualification", "qualification"
    GOLD = "gold", "gold (mixed into work)"


class GoldItem(models.Model):
    """An image with a known answer: the demo's known-factor variants or reviewer-approved answers."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="gold_items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="gold_items")
    kind = models.CharField(max_length=16, choices=GoldKind.choices)
    factors = models.JSONField(help_text="The known answer: a list of factor keys (may be empty).")
    source = models.CharField(max_length=32, default="known_factors")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["campaign_id", "kind", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "image"], name="gold_item_unique_image"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.image_id}: {self.factors}"


class AssignmentKind(models.TextChoices):
    WORK = "work", "work"
    QUALIFICATION = "qualification", "qualification"
    GOLD = "gold", "gold"


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "leased"  # handed out; counts against the item until expires_at
    SUBMITTED = "submitted", "submitted"
    SKIPPED = "skipped", "skipped"


def live_lease_q(now) -> Q:
    """The one "live lease" rule: handed out and not yet expired (it holds its slot until then)."""
    return Q(status=AssignmentStatus.LEASED, expires_at__gt=now)


def live_lease_sql(alias: str) -> str:
    """live_lease_q as SQL for the queue's raw queries; parameters from live_lease_params."""
    return f"{alias}.status = %s AND {alias}.expires_at > %s"


def live_lease_params(now, connection) -> list:
    return [AssignmentStatus.LEASED.value, connection.ops.adapt_datetimefield_value(now)]


class Assignment(models.Model):
    """A lease: one image handed to one annotator. An annotator gets an image at most once.

    Work leases hold one of the item's planned slots until they expire; gold and qualification
    assignments hold no slot (everyone answers every gold item once).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    kind = models.CharField(max_length=16, choices=AssignmentKind.choices, default=AssignmentKind.WORK)
    item = models.ForeignKey(CampaignItem, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    gold_item = models.ForeignKey(GoldItem, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)
    # Provenance: which prototype run's images were shown next to the sample (None = the
    # stand-in images used before any prototype run existed) and which images they were.
    # SET_NULL, not PROTECT: a lease is provenance of what was shown, not a reason to keep a
    # prototype run forever; if a maintainer deletes a run, its leases keep the image ids and
    # read "run unknown" instead of blocking the deletion (or disappearing, as CASCADE would).
    prototype_run = models.ForeignKey(
        "prototypes.PrototypeRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prototype_image_ids = models.JSONField(default=list, blank=True)
    annotation = models.ForeignKey(
        "catalog.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            # "Never gives an annotator an image they have seen", enforced by the database too.
            models.UniqueConstraint(fields=["campaign", "image", "annotator"], name="assignment_once_per_annotator"),
            models.CheckConstraint(
                condition=(Q(kind="work", item__isnull=False, gold_item__isnull=True))
                | (Q(kind__in=["qualification", "gold"], item__isnull=True, gold_item__isnull=False)),
                name="assignment_kind_matches_target",
            ),
            models.CheckConstraint(
                condition=~Q(status="skipped") | ~Q(skip_reason=""), name="skipped_assignment_has_reason"
            ),
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False), name="submitted_assignment_has_time"
            ),
        ]
        indexes = [
            models.Index(fields=["item", "status", "expires_at"], name="assignment_slot_idx"),
            models.Index(fields=["annotator", "campaign", "status"], name="assignment_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} lease {self.pk}: image {self.image_id} -> user {self.annotator_id} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return not self.is_live(timezone.now()) and self.status == AssignmentStatus.LEASED

    def is_live(self, now) -> bool:
        """live_lease_q for one row."""
        return self.status == AssignmentStatus.LEASED and self.expires_at > now


class GoldResponse(models.Model):
    """An annotator's answer to a gold or qualification item, scored against the known answer."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="gold_response")
    gold_item = models.ForeignKey(GoldItem, on_delete=models.CASCADE, related_name="responses")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gold_responses")
    factors = models.JSONField()
    nothing_differs = models.BooleanField(default=False)
    justification = models.TextField(blank=True)
    one_word = models.CharField(max_length=300, blank=True)
    tp = models.PositiveSmallIntegerField()
    fp = models.PositiveSmallIntegerField()
    fn = models.PositiveSmallIntegerField()
    f1 = models.FloatField(help_text="Per-item F1 over the factors (1.0 when both answers are empty).")
    time_on_task_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["gold_item", "annotator"], name="gold_response_once"),
            models.CheckConstraint(condition=Q(f1__gte=0) & Q(f1__lte=1), name="gold_response_f1_0_1"),
        ]


class QualificationStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "in progress"
    PASSED = "passed", "passed"
    FAILED = "failed", "failed"


class Qualification(models.Model):
    """An annotator's qualification for a campaign; passing unlocks the real queue."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="qualifications")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications")
    status = models.CharField(
        max_length=16, choices=QualificationStatus.choices, default=QualificationStatus.IN_PROGRESS
    )
    score = models.FloatField(null=True, blank=True, help_text="Micro-F1 over the qualification answers.")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="qualification_once_per_campaign"),
        ]


class AnnotatorCounter(models.Model):
    """An annotator's submitted work in a campaign, stored (the form's "done" counter).

    Counting the annotator's submitted leases on every `next` and form render read one index
    entry per answer: 7 ms of PostgreSQL for an annotator with 30,000 answers, growing with
    everything the annotator did. Incremented in the submit's transaction, with the campaign's
    and the item's counters (services.submissions, the only place work is counted);
    campaign_counters_recount rebuilds it from the leases.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="annotator_counters")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    n_done = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="annotator_counter_once"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in campaign {self.campaign_id}: {self.n_done}"


def known_factor_list(value: object) -> list[str]:
    """Normalise Image.known_factors (a list of keys or a {key: bool} dict) to keys in form order."""
    if isinstance(value, dict):
        chosen = {k for k, v in value.items() if v}
    elif isinstance(value, list | tuple):
        chosen = {str(k) for k in value}
    else:
        chosen = set()
    return [k for k in FACTOR_KEYS if k in chosen]
