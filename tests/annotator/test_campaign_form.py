"""Finding 6 (a class filter that matches nothing) and finding 5's form half (huge numbers):
the campaign form refuses them with a 400 and creates nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotator.models import Campaign
from annotator.services import campaign_create
from infra.errors import DomainError
from tests.conftest import client_for

pytestmark = pytest.mark.embedded


def _post(user, data):
    c = client_for(user)
    c.get(reverse("annotator:campaigns"))
    body = {
        "name": "c1",
        "dataset": "tiny",
        "split": "",
        "class_indices": "",
        "sample_size": "",
        "overlap_fraction": "0.1",
        "overlap_copies": "3",
        "gold_rate": "0",
        "qualification_threshold": "0.5",
        "status": "active",
        **data,
        "csrfmiddlewaretoken": c.cookies["csrftoken"].value,
    }
    return c.post(reverse("annotator:campaigns"), body)


def test_class_index_that_matches_nothing_is_refused(dataset, maintainer):
    r = _post(maintainer, {"class_indices": "999"})
    assert r.status_code == 400 and b"no class with index 999" in r.content
    assert not Campaign.objects.exists()


def test_known_class_index_makes_a_campaign_over_that_class_only(dataset, maintainer):
    r = _post(maintainer, {"class_indices": "1"})
    assert r.status_code == 302
    c = Campaign.objects.get()
    assert set(c.items.values_list("image__image_class__index", flat=True)) == {1}


@pytest.mark.parametrize(
    "field,value",
    [("sample_size", "9" * 40), ("class_indices", "9" * 40), ("class_indices", "-1"), ("overlap_copies", "9" * 40)],
)
def test_huge_or_negative_numbers_are_a_400(dataset, maintainer, field, value):
    r = _post(maintainer, {field: value})
    assert r.status_code == 400
    assert not Campaign.objects.exists()


def test_service_refuses_an_empty_class_list(dataset):
    with pytest.raises(DomainError) as e:
        campaign_create(name="x", dataset=dataset, class_ids=[])
    assert e.value.field == "class_indices" and not Campaign.objects.exists()
