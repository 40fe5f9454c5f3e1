"""Answers: validation at the field, versions, revisions, qualification and gold scoring."""

import random

import pytest

from annotator.models import AssignmentKind, GoldKind, Qualification, QualificationStatus
from annotator.services import (
    JUSTIFICATION_MAX,
    annotation_revise,
    annotation_submit,
    answer_clean,
    assignment_next,
    gold_items_add,
)
from catalog.models import Annotation, AnnotationStatus, AnnotationVersion, Image
from infra.errors import Conflict, DomainError, Forbidden, NotFound
from tests.annotator.conftest import answer


@pytest.mark.embedded
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"factors": []}, "factors"),
        ({"factors": ["pose"], "nothing_differs": True}, "nothing_differs"),
        ({"factors": ["not_a_factor"]}, "factors"),
        ({"justification": "   "}, "justification"),
        ({"justification": "x" * (JUSTIFICATION_MAX + 1)}, "justification"),
        ({"one_word": ""}, "one_word"),
        ({"one_word": "far too many words here"}, "one_word"),
    ],
)
def test_bad_answer_is_refused_at_its_field(data, field):
    base = {"factors": ["pose"], "nothing_differs": False, "justification": "j", "one_word": "w"}
    with pytest.raises(DomainError) as exc:
        answer_clean(**{**base, **data})
    assert exc.value.field == field and field in exc.value.details


@pytest.mark.embedded
def test_zero_factors_allowed_with_explicit_nothing_differs():
    a = answer_clean(factors=[], nothing_differs=True, justification="same", one_word="same")
    assert a.factors == [] and a.nothing_differs


@pytest.mark.embedded
def test_submit_creates_annotation_and_first_version(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    result = annotation_submit(
        assignment_id=a.pk, user=annotator, answer=answer(factors=["darker", "pose"], main_factor="darker")
    )
    ann = result.annotation
    ann.refresh_from_db()
    assert ann.selected_factors == ["pose", "darker"] and ann.annotator == annotator
    assert ann.time_on_task_ms is not None
    v = AnnotationVersion.objects.get(annotation=ann)
    assert v.version == 1 and v.data["factors"] == ["pose", "darker"]


@pytest.mark.embedded
def test_submit_writes_the_answer_its_version_the_audit_row_the_lease_and_both_counters(campaign, annotator):
    """On PostgreSQL these are one statement (a data-modifying WITH); on SQLite five: the same rows."""
    from annotator.models import Assignment, AssignmentStatus, Campaign, CampaignItem
    from review.models import AuditAction, AuditEvent

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    result = annotation_submit(
        assignment_id=a.pk,
        user=annotator,
        answer=answer(factors=["color", "pose"], main_factor="color", justification="red, not grey", one_word="red"),
    )
    ann = Annotation.objects.get()
    assert result.annotation.pk == ann.pk and result.annotation.version == 1 and not result.replayed
    assert (ann.image_id, ann.annotator_id, ann.source, ann.status) == (a.image_id, annotator.pk, "user", "submitted")
    assert (ann.selected_factors, ann.main_factor, ann.justification, ann.one_word) == (
        ["pose", "color"],
        "color",
        "red, not grey",
        "red",
    )
    assert ann.time_on_task_ms is not None and ann.created_at is not None and ann.version == 1
    v = AnnotationVersion.objects.get()
    assert (v.annotation_id, v.version, v.author_id, v.reason) == (ann.pk, 1, annotator.pk, "create")
    assert v.data == ann.snapshot() and v.created_at is not None
    event = AuditEvent.objects.get()
    assert (event.annotation_id, event.image_id, event.actor_id, event.action) == (
        ann.pk,
        ann.image_id,
        annotator.pk,
        AuditAction.CREATE,
    )
    assert event.after == v.data and event.before is None
    lease = Assignment.objects.get(pk=a.pk)
    assert (lease.status, lease.annotation_id) == (AssignmentStatus.SUBMITTED, ann.pk) and lease.submitted_at
    assert CampaignItem.objects.get(pk=a.item_id).n_done == 1
    assert Campaign.objects.get(pk=campaign.pk).n_done == 1


@pytest.mark.embedded
def test_a_submit_for_an_item_already_full_writes_nothing(campaign, annotator):
    """The item's guarded counter is the condition of every write: when it finds the item full
    (counters repaired by hand while a lease was out, say) nothing at all is saved."""
    from annotator.models import Assignment, AssignmentStatus, Campaign, CampaignItem
    from review.models import AuditEvent

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    CampaignItem.objects.filter(pk=a.item_id).update(n_done=1, planned=1)
    with pytest.raises(Conflict) as exc:
        annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    assert exc.value.code == "item_full"
    assert not Annotation.objects.exists() and not AnnotationVersion.objects.exists()
    assert not AuditEvent.objects.exists()
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.LEASED
    assert Campaign.objects.get(pk=campaign.pk).n_done == 0
    assert CampaignItem.objects.get(pk=a.item_id).n_done == 1


@pytest.mark.embedded
def test_second_submit_of_the_same_assignment_is_refused(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())
    with pytest.raises(Conflict):
        annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(factors=["color"]))
    assert Annotation.objects.get().selected_factors == ["pose"]


@pytest.mark.embedded
def test_submit_for_someone_elses_assignment_is_not_found(campaign, annotator, other_annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    with pytest.raises(NotFound):
        annotation_submit(assignment_id=a.pk, user=other_annotator, answer=answer())
    assert not Annotation.objects.exists()


@pytest.mark.embedded
def test_revision_keeps_every_version(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    annotation_revise(annotation_id=ann.pk, user=annotator, answer=answer(factors=["color"], justification="red"))
    ann.refresh_from_db()
    assert ann.version == 2 and ann.selected_factors == ["color"]
    versions = list(AnnotationVersion.objects.filter(annotation=ann).order_by("version"))
    assert [v.data["factors"] for v in versions] == [["pose"], ["color"]]


@pytest.mark.embedded
def test_reviewed_annotation_cannot_be_revised(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    Annotation.objects.filter(pk=ann.pk).update(status=AnnotationStatus.ACCEPTED)
    with pytest.raises(Conflict):
        annotation_revise(annotation_id=ann.pk, user=annotator, answer=answer(factors=["color"]))
    ann.refresh_from_db()
    assert ann.version == 1 and ann.selected_factors == ["pose"]


@pytest.mark.embedded
def test_other_annotator_cannot_revise(campaign, annotator, other_annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    with pytest.raises(NotFound):
        annotation_revise(annotation_id=ann.pk, user=other_annotator, answer=answer(factors=["color"]))
    ann.refresh_from_db()
    assert ann.version == 1


def _answer_qualification(campaign, user, right: bool):
    while True:
        a = assignment_next(campaign_id=campaign.id, user=user)
        if a is None or a.kind != AssignmentKind.QUALIFICATION:
            return a
        known = a.gold_item.factors
        ans = answer(factors=known) if right else answer(factors=["style"])
        annotation_submit(assignment_id=a.pk, user=user, answer=ans)


@pytest.mark.embedded
def test_qualification_comes_first_and_passing_unlocks_work(qualified_campaign, annotator):
    first = assignment_next(campaign_id=qualified_campaign.id, user=annotator)
    assert first.kind == AssignmentKind.QUALIFICATION
    work = _answer_qualification(qualified_campaign, annotator, right=True)
    assert work is not None and work.kind == AssignmentKind.WORK
    qual = Qualification.objects.get(campaign=qualified_campaign, annotator=annotator)
    assert qual.status == QualificationStatus.PASSED and qual.score == 1.0
    assert not Annotation.objects.filter(image__known_factors__isnull=False).exists()


@pytest.mark.embedded
def test_failing_qualification_keeps_the_queue_locked(qualified_campaign, annotator):
    with pytest.raises(Forbidden) as exc:
        _answer_qualification(qualified_campaign, annotator, right=False)
    assert exc.value.code == "not_qualified"
    qual = Qualification.objects.get(campaign=qualified_campaign, annotator=annotator)
    assert qual.status == QualificationStatus.FAILED and qual.score == 0.0
    assert not Annotation.objects.exists()


@pytest.mark.embedded
def test_gold_items_are_mixed_in_at_the_gold_rate_and_scored(campaign, annotator):
    gold_items_add(campaign=campaign, images=Image.objects.filter(known_factors__isnull=False), kind=GoldKind.GOLD)
    campaign.gold_rate = 1.0
    campaign.save()
    a = assignment_next(campaign_id=campaign.id, user=annotator, rng=random.Random(0))
    assert a.kind == AssignmentKind.GOLD
    result = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(factors=a.gold_item.factors))
    assert result.gold_response.f1 == 1.0 and result.annotation is None


@pytest.mark.embedded
def test_reviewer_approved_answers_can_become_gold_but_unreviewed_cannot(campaign, annotator):
    from annotator.services import gold_items_add_from_reviewed

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(factors=["color"])).annotation
    with pytest.raises(DomainError):
        gold_items_add_from_reviewed(campaign=campaign, annotation_ids=[ann.pk], kind=GoldKind.GOLD)
    assert not campaign.gold_items.exists()
    Annotation.objects.filter(pk=ann.pk).update(status=AnnotationStatus.ACCEPTED)
    assert gold_items_add_from_reviewed(campaign=campaign, annotation_ids=[ann.pk], kind=GoldKind.GOLD) == 1
    assert campaign.gold_items.get().factors == ["color"]
