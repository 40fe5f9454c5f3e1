"""Qualification: whether the real queue is unlocked, passing or failing, a maintainer's reset."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from annotator.models import (
    Assignment,
    AssignmentKind,
    Campaign,
    GoldKind,
    GoldResponse,
    Qualification,
    QualificationStatus,
)
from catalog.answers import f1_from_counts
from infra.errors import Forbidden


def qualification_needed(*, campaign: Campaign, user) -> Qualification | None:
    """The user's open qualification for a campaign that has a qualification set, or None when
    the real queue is unlocked."""
    qual, _ = Qualification.objects.get_or_create(campaign=campaign, annotator=user)
    if qual.status == QualificationStatus.PASSED:
        return None
    if qual.status == QualificationStatus.FAILED:
        raise Forbidden(
            f"You did not pass this campaign's qualification (score {qual.score:.2f}, "
            f"{campaign.qualification_threshold:.2f} needed). Ask a maintainer to reset it.",
            code="not_qualified",
        )
    return qual


def qualification_decide(*, campaign: Campaign, user, now: datetime) -> Qualification:
    """Pass or fail once every qualification item is answered: micro-F1 over all answers."""
    qual = Qualification.objects.select_for_update().get(campaign=campaign, annotator=user)
    n_items = campaign.gold_items.filter(kind=GoldKind.QUALIFICATION).count()
    rows = GoldResponse.objects.filter(
        annotator=user, gold_item__campaign=campaign, gold_item__kind=GoldKind.QUALIFICATION
    )
    agg = rows.aggregate(n=Count("id"), tp=Coalesce(Sum("tp"), 0), fp=Coalesce(Sum("fp"), 0), fn=Coalesce(Sum("fn"), 0))
    qual.score = f1_from_counts(agg["tp"], agg["fp"], agg["fn"])
    if agg["n"] >= n_items and qual.status == QualificationStatus.IN_PROGRESS:
        qual.status = (
            QualificationStatus.PASSED if qual.score >= campaign.qualification_threshold else QualificationStatus.FAILED
        )
        qual.decided_at = now
    qual.save(update_fields=["score", "status", "decided_at"])
    return qual


def qualification_reset(*, campaign_id: int, annotator_id: int) -> None:
    """Maintainer action: let an annotator take the qualification again.

    The qualification leases and answers are removed so that the same items can be shown again.
    """
    with transaction.atomic():
        Qualification.objects.filter(campaign_id=campaign_id, annotator_id=annotator_id).delete()
        Assignment.objects.filter(
            campaign_id=campaign_id, annotator_id=annotator_id, kind=AssignmentKind.QUALIFICATION
        ).delete()
