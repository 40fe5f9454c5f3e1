import io

import pytest

from annotator import demo
from annotator.models import Campaign, GoldKind
from tests.annotator.conftest import make_dataset


@pytest.mark.embedded
def test_demo_setup_builds_a_campaign_with_overlap_and_qualification_once(db, tmp_path):
    make_dataset(tmp_path, n_images=20, n_gold=14, slug="demo")
    demo.setup(stdout=io.StringIO())
    campaign = Campaign.objects.get(name=demo.DEMO_CAMPAIGN)
    n_work = 20 + 14 - demo.QUALIFICATION_ITEMS - demo.GOLD_ITEMS  # the variants left over are work too
    assert campaign.items.count() == n_work == 24 and campaign.items.filter(planned=3).count() == 4
    assert campaign.gold_items.filter(kind=GoldKind.QUALIFICATION).count() == demo.QUALIFICATION_ITEMS
    assert campaign.gold_items.filter(kind=GoldKind.GOLD).count() == 6
    gold_images = set(campaign.gold_items.values_list("image_id", flat=True))
    assert not campaign.items.filter(image_id__in=gold_images).exists()
    demo.setup(stdout=io.StringIO())
    assert Campaign.objects.count() == 1 and campaign.gold_items.count() == 10
