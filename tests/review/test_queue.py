"""The audit queue: flagged first, then disagreements, then samples at per-annotator rates."""

import datetime as dt

import pytest
from django.utils import timezone

from review import selectors
from review.models import AuditSettings, ConsistencyFlag
from tests.review.conftest import answer, make_images

pytestmark = pytest.mark.embedded


def set_rates(**kw):
    AuditSettings.objects.update_or_create(pk=1, defaults=kw)


def test_new_annotators_are_sampled_at_the_higher_rate(db, tmp_path, annotator, other_annotator, reviewer):
    imgs = make_images(tmp_path / "q", 7)
    set_rates(base_rate=0.0, new_annotator_rate=1.0, new_annotator_until=3)
    new = [answer(imgs[i], annotator, ["pose"]) for i in range(2)]
    for i in range(2, 7):
        answer(imgs[i], other_annotator, ["pose"])
    queue = selectors.audit_queue(reviewer=reviewer)
    assert [i.annotation for i in queue] == new
    assert all("new annotator" in i.reasons[0] for i in queue)


def test_annotators_with_low_gold_accuracy_are_sampled_at_the_higher_rate(
    db, tmp_path, annotator, other_annotator, reviewer
):
    from annotator.models import Assignment, Campaign, GoldItem, GoldResponse

    imgs = make_images(tmp_path / "q", 5)
    set_rates(base_rate=0.0, new_annotator_rate=0.0, low_gold_rate=1.0, low_gold_below=0.7)
    campaign = Campaign.objects.create(name="c", dataset=imgs[0].dataset)
    gold = GoldItem.objects.create(campaign=campaign, image=imgs[4], kind="gold", factors=["darker"])
    for user, f1 in ((annotator, 0.2), (other_annotator, 0.95)):
        a = Assignment.objects.create(
            campaign=campaign,
            annotator=user,
            kind="gold",
            gold_item=gold,
            image=imgs[4],
            expires_at=timezone.now() + dt.timedelta(minutes=15),
        )
        GoldResponse.objects.create(assignment=a, gold_item=gold, annotator=user, factors=[], tp=0, fp=0, fn=1, f1=f1)
    weak = [answer(imgs[i], annotator, ["pose"]) for i in range(2)]
    answer(imgs[2], other_annotator, ["pose"])
    queue = selectors.audit_queue(reviewer=reviewer)
    assert [i.annotation for i in queue] == weak and "low gold accuracy 0.20" in queue[0].reasons[0]


def test_the_base_rate_samples_a_stable_share(db, tmp_path, annotator, reviewer):
    imgs = make_images(tmp_path / "q", 60)
    set_rates(base_rate=0.3, new_annotator_rate=0.3)
    for img in imgs:
        answer(img, annotator, ["pose"])
    first = [i.annotation.pk for i in selectors.audit_queue(reviewer=reviewer)]
    assert 6 <= len(first) <= 30  # about 30 % of 60, from the deterministic hash
    assert first == [i.annotation.pk for i in selectors.audit_queue(reviewer=reviewer)]  # stable on reload


def test_order_is_flagged_then_disagreements_then_samples(
    images, annotator, other_annotator, third_annotator, reviewer
):
    set_rates(base_rate=1.0, new_annotator_rate=1.0)
    sample = answer(images[0], third_annotator, ["pose"])
    answer(images[1], annotator, ["pose"])
    answer(images[1], other_annotator, ["color"])
    answer(images[2], annotator, ["pose"])
    answer(images[2], other_annotator, ["pose"])  # they agree: not in the queue
    flagged = answer(images[3], third_annotator, [], justification="much darker")
    ConsistencyFlag.objects.create(
        annotation=flagged,
        annotation_version=1,
        kind="mentions_unticked",
        factor="darker",
        reason="says darker, darker not ticked",
    )
    queue = selectors.audit_queue(reviewer=reviewer)
    assert [(i.kind, i.image.pk) for i in queue] == [
        ("flagged", images[3].pk),
        ("disagreement", images[1].pk),
        ("sample", images[0].pk),
    ]
    assert queue[0].reasons == ["says darker, darker not ticked"]
    assert "disagree on pose, color" in queue[1].reasons[0] and queue[2].annotation == sample


def test_flags_of_an_older_version_no_longer_count(images, annotator, reviewer):
    set_rates(base_rate=0.0, new_annotator_rate=0.0)
    ann = answer(images[0], annotator, ["pose"], justification="darker")
    ConsistencyFlag.objects.create(
        annotation=ann, annotation_version=1, kind="mentions_unticked", factor="darker", reason="r"
    )
    ann.version = 2
    ann.save()
    assert selectors.audit_queue(reviewer=reviewer) == []


def test_a_reviewer_never_gets_own_annotations_or_images(images, annotator, reviewer):
    from django.contrib.auth.models import Group

    reviewer.groups.add(Group.objects.get_or_create(name="annotator")[0])
    set_rates(base_rate=1.0, new_annotator_rate=1.0)
    answer(images[0], reviewer, ["pose"])
    answer(images[1], reviewer, ["pose"])
    answer(images[1], annotator, ["color"])  # disagreement on an image the reviewer annotated
    flagged = answer(images[2], reviewer, [], justification="darker")
    ConsistencyFlag.objects.create(
        annotation=flagged, annotation_version=1, kind="mentions_unticked", factor="darker", reason="r"
    )
    assert selectors.audit_queue(reviewer=reviewer) == []


def test_a_disagreement_is_queued_before_all_planned_answers_are_in(images, annotator, other_annotator, reviewer):
    from annotator.models import Campaign, CampaignItem

    set_rates(base_rate=0.0, new_annotator_rate=0.0)
    campaign = Campaign.objects.create(name="c", dataset=images[0].dataset)
    CampaignItem.objects.create(campaign=campaign, image=images[0], planned=3)
    answer(images[0], annotator, ["pose"])
    answer(images[0], other_annotator, ["color"])
    (item,) = selectors.audit_queue(reviewer=reviewer)
    assert item.kind == "disagreement" and "(2 of 3 planned answers in)" in item.reasons[0]


def test_an_answer_revised_after_a_rejection_comes_back_with_the_comment(images, annotator, reviewer, second_reviewer):
    from annotator.services import annotation_revise, answer_clean
    from review import services

    set_rates(base_rate=0.0, new_annotator_rate=0.0)
    ann = answer(images[0], annotator, ["pose"])
    services.review_reject(annotation_id=ann.pk, reviewer=reviewer, expected_version=1, comment="tick darker")
    assert selectors.audit_queue(reviewer=second_reviewer) == []
    answer_ = answer_clean(
        factors=["pose", "darker"], nothing_differs=False, justification="turned, darker", one_word="dark"
    )
    annotation_revise(annotation_id=ann.pk, user=annotator, answer=answer_)  # the annotator app's own service
    (item,) = selectors.audit_queue(reviewer=second_reviewer)
    assert item.kind == "resubmitted" and item.annotation == ann and "tick darker" in item.reasons[0]
