import pytest

from annotator.models import Assignment, AssignmentKind, Campaign, GoldItem, GoldKind, GoldResponse
from annotator.selectors import gold_accuracy_by_annotator
from catalog.models import Image


def _respond(campaign, gold, user, f1):
    a = Assignment.objects.create(
        campaign=campaign,
        annotator=user,
        kind=AssignmentKind.GOLD,
        gold_item=gold,
        image=gold.image,
        expires_at=campaign.created_at,
    )
    GoldResponse.objects.create(assignment=a, gold_item=gold, annotator=user, factors=[], tp=0, fp=0, fn=0, f1=f1)


@pytest.mark.embedded
def test_gold_accuracy_is_the_mean_f1_per_annotator_and_none_without_gold(dataset, annotator, other_annotator):
    campaign = Campaign.objects.create(name="c", dataset=dataset)
    golds = [
        GoldItem.objects.create(campaign=campaign, image=img, kind=GoldKind.GOLD, factors=img.known_factors)
        for img in Image.objects.filter(known_factors__isnull=False)[:2]
    ]
    _respond(campaign, golds[0], annotator, 1.0)
    _respond(campaign, golds[1], annotator, 0.5)
    assert gold_accuracy_by_annotator() == {annotator.id: 0.75}
    assert gold_accuracy_by_annotator(user_ids=[annotator.id, other_annotator.id]) == {
        annotator.id: 0.75,
        other_annotator.id: None,
    }
