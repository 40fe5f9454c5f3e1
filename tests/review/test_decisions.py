"""Review decisions: accept, reject with a comment, correct; own annotations; stale versions."""

import pytest

from catalog.models import AnnotationVersion
from infra.errors import Conflict, DomainError, Forbidden
from review import selectors, services
from review.models import AuditEvent, ReviewDecision
from tests.review.conftest import answer

pytestmark = pytest.mark.embedded


def test_accept_marks_the_annotation_accepted_and_records_who_and_when(images, annotator, reviewer):
    ann = answer(images[0], annotator, ["pose"])
    services.review_accept(annotation_id=ann.pk, reviewer=reviewer, expected_version=1)
    ann.refresh_from_db()
    assert ann.status == "accepted" and ann.version == 2
    decision = ReviewDecision.objects.get(annotation=ann)
    assert decision.reviewer == reviewer and decision.action == "accept" and decision.reviewed_version == 1
    event = AuditEvent.objects.get(annotation=ann, action="accept")
    assert event.actor == reviewer and event.before["status"] == "submitted" and event.after["status"] == "accepted"


def test_reject_sends_the_annotation_back_with_the_comment(images, annotator, reviewer):
    ann = answer(images[0], annotator, ["pose"])
    services.review_reject(annotation_id=ann.pk, reviewer=reviewer, expected_version=1, comment="The dog is darker.")
    (returned,) = selectors.returned_annotations(user=annotator)
    assert returned.pk == ann.pk and returned.status == "rejected"
    assert returned.reject_comment == "The dog is darker." and returned.rejected_by == reviewer.username


def test_reject_without_a_comment_is_refused_and_changes_nothing(images, annotator, reviewer):
    ann = answer(images[0], annotator, ["pose"])
    with pytest.raises(DomainError) as err:
        services.review_reject(annotation_id=ann.pk, reviewer=reviewer, expected_version=1, comment="   ")
    assert err.value.field == "comment"
    ann.refresh_from_db()
    assert ann.status == "submitted" and ann.version == 1 and not ReviewDecision.objects.exists()


def test_correct_makes_the_reviewers_edit_current_and_keeps_the_original(images, annotator, reviewer):
    ann = answer(images[0], annotator, ["pose"], justification="turned around")
    services.review_correct(
        annotation_id=ann.pk,
        reviewer=reviewer,
        expected_version=1,
        factors=["darker", "pose"],
        justification="turned and darker",
    )
    ann.refresh_from_db()
    assert ann.selected_factors == ["pose", "darker"] and ann.status == "corrected" and ann.version == 2
    v1, v2 = AnnotationVersion.objects.filter(annotation=ann).order_by("version")
    assert v1.data["factors"] == ["pose"] and v1.data["justification"] == "turned around" and v1.author == annotator
    assert v2.data["factors"] == ["pose", "darker"] and v2.author == reviewer and v2.reason == "review:correct"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"factors": ["not_a_factor"], "justification": "x"}, "factors"),
        ({"factors": [], "justification": "x"}, "factors"),
        ({"factors": ["pose"], "justification": ""}, "justification"),
        ({"factors": ["pose"], "justification": "x" * 2001}, "justification"),
        ({"factors": ["pose"], "nothing_differs": True, "justification": "x"}, "nothing_differs"),
    ],
)
def test_bad_corrections_are_refused_and_change_nothing(images, annotator, reviewer, kwargs, field):
    ann = answer(images[0], annotator, ["pose"])
    with pytest.raises(DomainError) as err:
        services.review_correct(annotation_id=ann.pk, reviewer=reviewer, expected_version=1, **kwargs)
    assert err.value.field == field
    ann.refresh_from_db()
    assert ann.selected_factors == ["pose"] and ann.version == 1 and ann.status == "submitted"


def test_a_reviewer_never_reviews_own_annotation(images, reviewer, django_user_model):
    from django.contrib.auth.models import Group

    reviewer.groups.add(Group.objects.get_or_create(name="annotator")[0])
    ann = answer(images[0], reviewer, ["pose"])
    with pytest.raises(Forbidden):
        services.review_accept(annotation_id=ann.pk, reviewer=reviewer, expected_version=1)
    ann.refresh_from_db()
    assert ann.status == "submitted"


def test_annotators_cannot_review(images, annotator, other_annotator):
    ann = answer(images[0], annotator, ["pose"])
    with pytest.raises(Forbidden):
        services.review_accept(annotation_id=ann.pk, reviewer=other_annotator, expected_version=1)


def test_a_decision_on_a_stale_version_is_a_conflict_naming_the_winner(images, annotator, reviewer, second_reviewer):
    ann = answer(images[0], annotator, ["pose"])
    services.review_accept(annotation_id=ann.pk, reviewer=reviewer, expected_version=1)
    with pytest.raises(Conflict) as err:
        services.review_reject(annotation_id=ann.pk, reviewer=second_reviewer, expected_version=1, comment="no")
    assert "rev" in err.value.message and "accept" in err.value.message
    ann.refresh_from_db()
    assert ann.status == "accepted" and ReviewDecision.objects.count() == 1
