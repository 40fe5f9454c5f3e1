"""The queue: leases, overlap, never twice, expiry, skip."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.models import Assignment, AssignmentStatus, CampaignItem
from annotator.services import annotation_submit, assignment_next, assignment_skip, campaign_create
from catalog.models import Annotation
from infra.errors import DomainError, Forbidden
from tests.annotator.conftest import answer


def _keep_one_single_item(campaign) -> None:
    """Reduce the campaign to one image planned once."""
    keep = CampaignItem.objects.filter(campaign=campaign, planned=1).first()
    CampaignItem.objects.filter(campaign=campaign).exclude(pk=keep.pk).delete()


@pytest.mark.embedded
def test_campaign_plans_overlap_copies_for_the_overlap_fraction(campaign):
    planned = sorted(CampaignItem.objects.filter(campaign=campaign).values_list("planned", flat=True))
    assert planned == [1, 1, 1, 1, 3, 3]


@pytest.mark.embedded
def test_campaign_leaves_out_known_factor_variants(campaign):
    assert not CampaignItem.objects.filter(campaign=campaign, image__known_factors__isnull=False).exists()


@pytest.mark.embedded
def test_campaign_with_bad_overlap_is_refused_and_nothing_created(dataset):
    with pytest.raises(DomainError) as exc:
        campaign_create(name="bad", dataset=dataset, overlap_fraction=1.5)
    assert exc.value.field == "overlap_fraction"
    assert not CampaignItem.objects.exists()


@pytest.mark.embedded
def test_next_returns_the_held_lease_again(campaign, annotator):
    first = assignment_next(campaign_id=campaign.id, user=annotator)
    assert assignment_next(campaign_id=campaign.id, user=annotator).pk == first.pk


@pytest.mark.embedded
def test_single_image_is_never_leased_to_two_annotators(campaign, annotator, other_annotator):
    _keep_one_single_item(campaign)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    assert a is not None
    assert assignment_next(campaign_id=campaign.id, user=other_annotator) is None


@pytest.mark.embedded
def test_annotator_never_gets_an_image_twice_even_an_overlap_one(campaign, annotator):
    seen = []
    while (a := assignment_next(campaign_id=campaign.id, user=annotator)) is not None:
        seen.append(a.image_id)
        annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    assert len(seen) == len(set(seen)) == 6


@pytest.mark.embedded
def test_expired_lease_returns_the_image_to_the_queue(campaign, annotator, other_annotator):
    _keep_one_single_item(campaign)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    later = timezone.now() + timedelta(minutes=campaign.lease_minutes + 1)
    b = assignment_next(campaign_id=campaign.id, user=other_annotator, now=later)
    assert b is not None and b.image_id == a.image_id


@pytest.mark.embedded
def test_submit_on_expired_lease_is_saved_when_the_image_still_needs_it(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    later = timezone.now() + timedelta(minutes=campaign.lease_minutes + 1)
    result = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(), now=later)
    assert result.annotation.image_id == a.image_id
    assert CampaignItem.objects.get(pk=a.item_id).n_done == 1


@pytest.mark.embedded
def test_submit_on_expired_lease_is_refused_when_someone_else_took_the_image(campaign, annotator, other_annotator):
    _keep_one_single_item(campaign)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    later = timezone.now() + timedelta(minutes=campaign.lease_minutes + 1)
    b = assignment_next(campaign_id=campaign.id, user=other_annotator, now=later)
    annotation_submit(assignment_id=b.pk, user=other_annotator, answer=answer(), now=later)
    with pytest.raises(DomainError) as exc:
        annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(), now=later)
    assert exc.value.code == "lease_expired" and "no longer needs" in exc.value.message
    a.refresh_from_db()
    assert a.status == AssignmentStatus.LEASED
    assert Annotation.objects.filter(image_id=a.image_id).count() == 1


@pytest.mark.embedded
def test_skip_needs_a_reason_and_changes_nothing_without_one(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    with pytest.raises(DomainError) as exc:
        assignment_skip(assignment_id=a.pk, user=annotator, reason="  ")
    assert exc.value.field == "reason"
    a.refresh_from_db()
    assert a.status == AssignmentStatus.LEASED


@pytest.mark.embedded
def test_skipped_image_goes_to_someone_else_never_back(campaign, annotator, other_annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    assignment_skip(assignment_id=a.pk, user=annotator, reason="blurry")
    mine = []
    while (n := assignment_next(campaign_id=campaign.id, user=annotator)) is not None:
        mine.append(n.image_id)
        annotation_submit(assignment_id=n.pk, user=annotator, answer=answer())
    assert a.image_id not in mine
    b = assignment_next(campaign_id=campaign.id, user=other_annotator)
    assert b is not None


@pytest.mark.embedded
def test_reviewer_without_annotator_role_gets_no_work(campaign, reviewer):
    with pytest.raises(Forbidden):
        assignment_next(campaign_id=campaign.id, user=reviewer)
    assert not Assignment.objects.exists()
