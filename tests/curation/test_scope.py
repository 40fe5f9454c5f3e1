"""Scoping a run to a split or to an annotation campaign, and empty scopes."""

import pytest

from annotator.services import campaign_create
from catalog.models import Annotation, Image
from curation import services
from curation.models import CurationRun
from infra.errors import DomainError

from .conftest import TEXTS, tiny_dataset  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_split_scope_curates_only_that_split(tiny_dataset):  # noqa: F811
    run = services.curation_start(dataset_slug=tiny_dataset.slug, split="train", enqueue=False)
    assert run.total == sum(1 for t in TEXTS if t[3] == "train")


def test_campaign_scope_curates_only_the_campaign_images(tiny_dataset):  # noqa: F811
    Image.objects.filter(dataset=tiny_dataset).update(relpath="x.jpg")
    campaign = campaign_create(name="c", dataset=tiny_dataset, split="val", overlap_fraction=0)
    run = services.curation_start(dataset_slug=tiny_dataset.slug, campaign_id=campaign.id, enqueue=False)
    run = services.curation_run_execute(run_id=run.id)
    assert run.status == "done"
    assert set(run.results.values_list("split", flat=True)) == {"val"}
    assert run.total == sum(1 for t in TEXTS if t[3] == "val")


def test_campaign_without_final_annotations_is_refused_with_a_clear_message(tiny_dataset):  # noqa: F811
    Image.objects.filter(dataset=tiny_dataset).update(relpath="x.jpg")
    campaign = campaign_create(name="fresh", dataset=tiny_dataset, overlap_fraction=0)
    Annotation.objects.filter(image__dataset=tiny_dataset).update(status="rejected")
    with pytest.raises(DomainError, match=f"Nothing to curate: campaign {campaign.id} has no final annotation yet"):
        services.curation_start(dataset_slug=tiny_dataset.slug, campaign_id=campaign.id)
    assert CurationRun.objects.count() == 0


def test_unknown_campaign_is_a_404(tiny_dataset):  # noqa: F811
    with pytest.raises(DomainError) as exc:
        services.curation_start(dataset_slug=tiny_dataset.slug, campaign_id=424242)
    assert exc.value.status == 404 and CurationRun.objects.count() == 0
