import io

import pytest

from annotator import demo
from annotator.models import Campaign, GoldKind
from tests.annotator.conftest import make_dataset


@pytest.mark.embedded
def test_demo_setup_builds_a_campaign_with_overlap_and_qualification_once(db, tmp_path):
    make_dataset(tmp_path, n_images=20, n_gold=6, slug="demo")
    demo.setup(stdout=io.StringIO())
    campaign = Campaign.objects.get(name=demo.DEMO_CAMPAIGN)
    assert campaign.items.count() == 20 and campaign.items.filter(planned=3).count() == 3
    assert campaign.gold_items.filter(kind=GoldKind.QUALIFICATION).count() == demo.QUALIFICATION_ITEMS
    assert campaign.gold_items.filter(kind=GoldKind.GOLD).count() == 2
    demo.setup(stdout=io.StringIO())
    assert Campaign.objects.count() == 1 and campaign.gold_items.count() == 6
