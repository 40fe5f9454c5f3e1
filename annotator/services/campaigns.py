"""Campaigns and their gold/qualification items."""

from __future__ import annotations

import random

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from annotator.models import (
    AnnotatorCounter,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldItem,
    GoldKind,
    known_factor_list,
)
from catalog.models import Annotation, AnnotationStatus, Dataset, Image
from infra.bulkcopy import bulk_insert
from infra.errors import Conflict, DomainError, NotFound
from prototypes.selectors import current_prototype_image_ids

# Campaign.sample_size is a positive integer column (32-bit in PostgreSQL).
SAMPLE_SIZE_MAX = 2**31 - 1


def campaign_create(
    *,
    name: str,
    dataset: Dataset,
    split: str = "",
    class_ids: list[int] | None = None,
    sample_size: int | None = None,
    overlap_fraction: float = 0.1,
    overlap_copies: int = 3,
    seed: int = 0,
    lease_minutes: int | None = None,
    gold_rate: float | None = None,
    qualification_threshold: float = 0.5,
    ask_main_factor: bool = True,
    created_by=None,
    include_known_variants: bool = False,
    exclude_image_ids: list[int] | None = None,
) -> Campaign:
    """Create a campaign and its items.

    Images with a stored file are eligible. Known-factor variants are left out unless
    `include_known_variants` (they are the usual gold answers); `exclude_image_ids` keeps the
    images chosen as gold or qualification items out of the work, so no one meets them twice.
    round(fraction x n) images, chosen at random, get `overlap_copies` independent annotations;
    all others get one. The queue order is shuffled so that overlap images are spread among
    the others.
    """
    name = (name or "").strip()
    if not name:
        raise DomainError("A campaign needs a name.", field="name")
    if Campaign.objects.filter(name=name).exists():
        raise Conflict(f"A campaign named {name!r} exists already.", field="name")
    if not 0 <= overlap_fraction <= 1:
        raise DomainError("The overlap fraction must lie between 0 and 1.", field="overlap_fraction")
    if overlap_copies < 2:
        raise DomainError("Overlap images need at least 2 annotations.", field="overlap_copies")
    if sample_size is not None and not 1 <= sample_size <= SAMPLE_SIZE_MAX:
        raise DomainError(f"The sample size must lie between 1 and {SAMPLE_SIZE_MAX}.", field="sample_size")
    if class_ids is not None:
        # An empty list is "no class", never "every class" (None): a class filter that matched
        # nothing used to create a campaign over the whole dataset.
        class_ids = list(dict.fromkeys(class_ids))
        if not class_ids:
            raise DomainError(
                "No class was chosen: give classes of this dataset, or none for every class.", field="class_indices"
            )
        known = set(dataset.classes.filter(pk__in=class_ids).values_list("pk", flat=True))
        if len(known) != len(class_ids):
            raise DomainError("Some of the classes chosen are not classes of this dataset.", field="class_indices")
    images = Image.objects.filter(dataset=dataset).exclude(relpath="").exclude(readable=False)
    if not include_known_variants:
        images = images.filter(known_factors__isnull=True)
    if exclude_image_ids:
        images = images.exclude(pk__in=exclude_image_ids)
    # The current run's prototypes are what every sample of their class is compared with: one
    # of them as a sample would be compared with itself.
    images = images.exclude(pk__in=current_prototype_image_ids(dataset_id=dataset.pk))
    if split:
        images = images.filter(split=split)
    if class_ids is not None:
        images = images.filter(image_class_id__in=class_ids)
    image_ids = list(images.order_by("id").values_list("id", flat=True))
    if not image_ids:
        raise DomainError("No image of this dataset matches the split and classes chosen.", field="dataset")
    rng = random.Random(seed)
    if sample_size is not None and sample_size < len(image_ids):
        image_ids = sorted(rng.sample(image_ids, sample_size))
    n_overlap = round(overlap_fraction * len(image_ids))
    overlap = set(rng.sample(image_ids, n_overlap))
    order = image_ids[:]
    rng.shuffle(order)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            dataset=dataset,
            split=split,
            sample_size=sample_size,
            seed=seed,
            overlap_fraction=overlap_fraction,
            overlap_copies=overlap_copies,
            lease_minutes=lease_minutes or settings.LEASE_MINUTES,
            gold_rate=settings.GOLD_RATE if gold_rate is None else gold_rate,
            qualification_threshold=qualification_threshold,
            ask_main_factor=ask_main_factor,
            created_by=created_by,
        )
        if class_ids:
            campaign.classes.set(class_ids)
        items = [
            CampaignItem(campaign=campaign, image_id=iid, planned=overlap_copies if iid in overlap else 1, position=pos)
            for pos, iid in enumerate(order)
        ]
        # COPY on PostgreSQL: 60,000 items in about a second instead of 30 INSERTs of 2,000.
        bulk_insert(CampaignItem, items)
        campaign.n_items = len(order)
        campaign.n_overlap_items = len(overlap)
        campaign.n_planned = len(order) + (overlap_copies - 1) * len(overlap)
        campaign.save(update_fields=["n_items", "n_overlap_items", "n_planned"])
    return campaign


def campaign_counters_recount(*, campaign_id: int) -> Campaign:
    """Set a campaign's stored counters from its items (repair, and after bulk SQL writes).

    Takes the campaign's row lock, so no submit counts an answer while it recounts.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFound("No such campaign.")
        row = CampaignItem.objects.filter(campaign_id=campaign_id).aggregate(
            items=Count("id"),
            overlap=Count("id", filter=Q(planned__gt=1)),
            planned=Coalesce(Sum("planned"), 0),
            done=Coalesce(Sum("n_done"), 0),
        )
        campaign.n_items, campaign.n_overlap_items = row["items"], row["overlap"]
        campaign.n_planned, campaign.n_done = row["planned"], row["done"]
        campaign.save(update_fields=["n_items", "n_overlap_items", "n_planned", "n_done"])
        # The annotators' counters, from their submitted work leases (a submit waiting on the
        # campaign's lock counts its answer after this, in the same order as the campaign's).
        AnnotatorCounter.objects.filter(campaign_id=campaign_id).delete()
        done_by = (
            Assignment.objects.filter(
                campaign_id=campaign_id, status=AssignmentStatus.SUBMITTED, kind=AssignmentKind.WORK
            )
            .values("annotator_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        AnnotatorCounter.objects.bulk_create(
            [AnnotatorCounter(campaign_id=campaign_id, annotator_id=r["annotator_id"], n_done=r["n"]) for r in done_by],
            batch_size=2000,
        )
    return campaign


def gold_items_add(*, campaign: Campaign, images: QuerySet[Image] | list[Image], kind: str) -> int:
    """Add images with known answers (Image.known_factors) as qualification or gold items."""
    if kind not in GoldKind.values:
        raise DomainError(f"Unknown gold kind {kind!r}.", field="kind")
    existing = set(campaign.gold_items.values_list("image_id", flat=True))
    start = campaign.gold_items.count()
    rows = []
    for img in images:
        if img.known_factors is None:
            raise DomainError(f"Image {img.file_name} has no known answer.", field="images")
        if img.id in existing:
            continue
        rows.append(
            GoldItem(
                campaign=campaign,
                image=img,
                kind=kind,
                factors=known_factor_list(img.known_factors),
                position=start + len(rows),
            )
        )
    GoldItem.objects.bulk_create(rows)
    return len(rows)


def gold_items_add_from_reviewed(*, campaign: Campaign, annotation_ids: list[int], kind: str) -> int:
    """Add images whose answer a reviewer approved (accepted, corrected or adjudicated) as gold.

    The approved factors become the known answer; images already gold in the campaign are kept.
    """
    if kind not in GoldKind.values:
        raise DomainError(f"Unknown gold kind {kind!r}.", field="kind")
    approved = list(
        Annotation.objects.filter(pk__in=annotation_ids)
        .filter(Q(status__in=[AnnotationStatus.ACCEPTED, AnnotationStatus.CORRECTED]) | Q(source="consensus"))
        .select_related("image")
    )
    if len(approved) != len(set(annotation_ids)):
        raise DomainError(
            "Only annotations that a reviewer accepted or corrected can become gold.", field="annotation_ids"
        )
    existing = set(campaign.gold_items.values_list("image_id", flat=True))
    start = campaign.gold_items.count()
    rows = []
    for ann in approved:
        if ann.image_id in existing:
            continue
        existing.add(ann.image_id)
        rows.append(
            GoldItem(
                campaign=campaign,
                image=ann.image,
                kind=kind,
                factors=ann.selected_factors,
                source=f"review:{ann.pk}",
                position=start + len(rows),
            )
        )
    GoldItem.objects.bulk_create(rows)
    return len(rows)


def campaign_set_status(*, campaign_id: int, status: str) -> Campaign:
    if status not in CampaignStatus.values:
        raise DomainError(f"Unknown status {status!r}.", field="status")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFound("No such campaign.")
        campaign.status = status
        campaign.save(update_fields=["status"])
    return campaign
