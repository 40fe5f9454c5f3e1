"""Finding 4: a sample is never its own prototype, and the current run's prototypes are never
work items of a campaign."""

from __future__ import annotations

import pytest

from annotator.models import Assignment, CampaignItem
from annotator.services import assignment_next, campaign_create
from catalog.models import Image
from prototypes.models import Prototype, PrototypeRun, RunStatus
from tests.annotator.conftest import make_dataset

pytestmark = pytest.mark.embedded


def _current_run(ds, per_class: int = 3) -> tuple[PrototypeRun, set[int]]:
    run = PrototypeRun.objects.create(dataset=ds, status=RunStatus.DONE, is_current=True)
    ids = set()
    for cls in ds.classes.all():
        for rank, img in enumerate(Image.objects.filter(image_class=cls, known_factors__isnull=True)[:per_class], 1):
            Prototype.objects.create(
                run=run, image_class=cls, image=img, rank=rank, probability=0.9, predicted_class=cls.index
            )
            ids.add(img.pk)
    return run, ids


def test_campaign_leaves_out_the_current_runs_prototypes(db, tmp_path):
    ds = make_dataset(tmp_path, n_images=12, n_classes=2, n_gold=0)
    _, proto_ids = _current_run(ds)
    campaign = campaign_create(name="c", dataset=ds, overlap_fraction=0.0, gold_rate=0.0)
    items = set(CampaignItem.objects.filter(campaign=campaign).values_list("image_id", flat=True))
    assert items and not items & proto_ids
    assert len(items) == 12 - len(proto_ids)


def test_an_image_that_became_a_prototype_later_is_not_handed_out(db, tmp_path, annotator):
    ds = make_dataset(tmp_path, n_images=8, n_classes=2, n_gold=0)
    campaign = campaign_create(name="c", dataset=ds, overlap_fraction=0.0, gold_rate=0.0)
    _, proto_ids = _current_run(ds)  # a run made current after the campaign
    leased = []
    while (a := assignment_next(campaign_id=campaign.id, user=annotator)) is not None:
        leased.append(a)
        Assignment.objects.filter(pk=a.pk).update(status="skipped", skip_reason="test")
    assert leased and not {a.image_id for a in leased} & proto_ids
    for a in leased:
        assert a.image_id not in a.prototype_image_ids


def test_a_sample_is_never_among_its_own_prototypes(db, tmp_path, annotator):
    ds = make_dataset(tmp_path, n_images=8, n_classes=1, n_gold=0)
    # No run yet: any readable images of the class stand in as prototypes (the first ones by name).
    campaign = campaign_create(name="c", dataset=ds, overlap_fraction=0.0, gold_rate=0.0)
    while (a := assignment_next(campaign_id=campaign.id, user=annotator)) is not None:
        assert a.image_id not in a.prototype_image_ids and len(a.prototype_image_ids) == 3
        Assignment.objects.filter(pk=a.pk).update(status="skipped", skip_reason="test")
