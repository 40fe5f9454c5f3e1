"""Adjudication of multi-annotated images: majority by default, configurable threshold, reviewer
settles ties, full agreement auto-accepted when configured; the result is the final annotation."""

import pytest

from catalog.models import Annotation
from infra.errors import Conflict, DomainError, Forbidden
from review import services
from review.models import AdjudicationRecord, AuditSettings
from review.selectors import final_annotations
from tests.review.conftest import answer

pytestmark = pytest.mark.embedded


@pytest.fixture
def three_answers(images, annotator, other_annotator, third_annotator):
    img = images[0]
    return img, [
        answer(img, annotator, ["pose", "darker"]),
        answer(img, other_annotator, ["pose"]),
        answer(img, third_annotator, ["pose", "darker", "background"]),
    ]


def test_majority_consensus_by_default(three_answers):
    _, answers = three_answers
    proposed, undecided = services.propose_consensus(answers, AuditSettings.current().consensus_threshold)
    assert proposed == ["pose", "darker"] and undecided == []


def test_a_stricter_threshold_leaves_two_to_one_splits_to_the_reviewer(three_answers):
    _, answers = three_answers
    proposed, undecided = services.propose_consensus(answers, 0.7)
    assert proposed == ["pose"] and set(undecided) == {"darker", "background"}


def test_a_tie_is_undecided(images, annotator, other_annotator):
    answers = [answer(images[0], annotator, ["pose"]), answer(images[0], other_annotator, ["color"])]
    proposed, undecided = services.propose_consensus(answers, 0.5)
    assert proposed == [] and set(undecided) == {"pose", "color"}


def test_settled_answer_becomes_the_final_annotation(three_answers, reviewer):
    img, answers = three_answers
    consensus = services.adjudication_settle(
        image_id=img.pk,
        reviewer=reviewer,
        factors=["pose", "darker"],
        justification="majority, checked",
        expected_state=services.state_token(answers),
    )
    assert consensus.source == "consensus" and consensus.selected_factors == ["pose", "darker"]
    assert list(final_annotations(dataset_id=img.dataset_id).filter(image=img)) == [consensus]
    assert set(Annotation.objects.filter(image=img, source="user").values_list("status", flat=True)) == {"superseded"}
    rec = AdjudicationRecord.objects.get(image=img)
    assert rec.decided_by == reviewer and rec.proposed == ["pose", "darker"] and len(rec.votes) == 3


def test_an_image_is_adjudicated_once(three_answers, reviewer, second_reviewer):
    img, answers = three_answers
    token = services.state_token(answers)
    services.adjudication_settle(
        image_id=img.pk, reviewer=reviewer, factors=["pose"], justification="x", expected_state=token
    )
    with pytest.raises(Conflict) as err:
        services.adjudication_settle(
            image_id=img.pk, reviewer=second_reviewer, factors=["darker"], justification="y", expected_state=token
        )
    assert "rev" in err.value.message
    assert Annotation.objects.get(image=img, source="consensus").selected_factors == ["pose"]


def test_adjudication_on_changed_answers_is_a_conflict(three_answers, reviewer):
    img, answers = three_answers
    token = services.state_token(answers)
    answers[1].version = 2
    answers[1].save()
    with pytest.raises(Conflict):
        services.adjudication_settle(
            image_id=img.pk, reviewer=reviewer, factors=["pose"], justification="x", expected_state=token
        )
    assert not Annotation.objects.filter(image=img, source="consensus").exists()


def test_a_reviewer_who_annotated_the_image_cannot_adjudicate_it(images, annotator, reviewer):
    answers = [answer(images[0], annotator, ["pose"]), answer(images[0], reviewer, ["color"])]
    with pytest.raises(Forbidden):
        services.adjudication_settle(
            image_id=images[0].pk,
            reviewer=reviewer,
            factors=["pose"],
            justification="x",
            expected_state=services.state_token(answers),
        )


def test_single_answer_images_are_not_adjudicated(images, annotator, reviewer):
    a = answer(images[0], annotator, ["pose"])
    with pytest.raises(DomainError):
        services.adjudication_settle(
            image_id=images[0].pk,
            reviewer=reviewer,
            factors=["pose"],
            justification="x",
            expected_state=services.state_token([a]),
        )


def test_full_agreement_is_accepted_automatically(images, annotator, other_annotator):
    answer(images[0], annotator, ["pose", "color"])
    answer(images[0], other_annotator, ["pose", "color"])
    answer(images[1], annotator, ["pose"])
    answer(images[1], other_annotator, ["color"])
    assert services.adjudication_auto_accept() == 1
    consensus = Annotation.objects.get(source="consensus")
    assert consensus.image == images[0] and consensus.selected_factors == ["pose", "color"]
    assert AdjudicationRecord.objects.get().method == "auto"


def test_automatic_acceptance_can_be_switched_off(images, annotator, other_annotator):
    AuditSettings.objects.update_or_create(pk=1, defaults={"auto_accept_full_agreement": False})
    answer(images[0], annotator, ["pose"])
    answer(images[0], other_annotator, ["pose"])
    assert services.adjudication_auto_accept() == 0
    assert not Annotation.objects.filter(source="consensus").exists()


def test_automatic_acceptance_waits_for_the_campaigns_planned_copies(images, annotator, other_annotator):
    from annotator.models import Campaign, CampaignItem

    campaign = Campaign.objects.create(name="c", dataset=images[0].dataset)
    CampaignItem.objects.create(campaign=campaign, image=images[0], planned=3)
    answer(images[0], annotator, ["pose"])
    answer(images[0], other_annotator, ["pose"])
    assert services.adjudication_auto_accept() == 0
