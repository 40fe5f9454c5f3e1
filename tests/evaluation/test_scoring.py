"""A scoring run of our own engine becomes an evaluation's input without a file round trip."""

from __future__ import annotations

import pytest

from catalog.factors import FACTOR_KEYS
from catalog.models import Image
from catalog.services import demo_dataset_build
from curation.models import CuratedImage, CurationRun
from evaluation import services
from evaluation.models import InputKind

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_a_random_weight_resnet18_scored_by_the_engine_is_evaluated(maintainer):
    demo_dataset_build()
    images = list(Image.objects.filter(dataset__slug="demo").order_by("id"))
    run = CurationRun.objects.create(dataset=images[0].dataset, status="done", params={"method": "test"})
    CuratedImage.objects.bulk_create(
        CuratedImage(run=run, image=im, top_factor=FACTOR_KEYS[i % 3], **{FACTOR_KEYS[i % 3]: True})
        for i, im in enumerate(images)
    )
    split = images[0].split
    ev = services.evaluation_from_scoring(
        owner=maintainer, name="resnet18 (random)", dataset_slug="demo", model_name="resnet18", weights="none",
        label_source="curation_run", curation_run_id=run.pk, split=split, filter_prototypes=False, enqueue=False, allow_low_coverage=True,
    )  # fmt: skip
    services.evaluation_compute(evaluation_ids=[ev.pk], figures=False)
    ev.refresh_from_db()
    # The engine scores what a prototype run scores: stored files, derived demo variants left out.
    scored = sum(1 for im in images if im.split == split and im.derived_from_id is None)
    assert ev.input_kind == InputKind.SCORING and ev.status == "done"
    assert ev.coverage["matched"] == scored and ev.primary["overall"]["n"] == scored
    assert ev.coverage["annotated_without_prediction"] == sum(1 for im in images if im.split == split) - scored


def test_the_drilldown_shows_thumbnails_where_pixels_exist(maintainer):
    from tests.conftest import client_for

    demo_dataset_build()
    images = list(Image.objects.filter(dataset__slug="demo").order_by("id"))
    run = CurationRun.objects.create(dataset=images[0].dataset, status="done", params={"method": "test"})
    CuratedImage.objects.bulk_create(CuratedImage(run=run, image=im, pose=True, top_factor="pose") for im in images)
    ev = services.evaluation_from_scoring(
        owner=maintainer, name="r18", dataset_slug="demo", model_name="resnet18", weights="none",
        label_source="curation_run", curation_run_id=run.pk, split=images[0].split, filter_prototypes=False,
        enqueue=False, allow_low_coverage=True,
    )  # fmt: skip
    services.evaluation_compute(evaluation_ids=[ev.pk], figures=False)
    c = client_for(maintainer)
    data = c.get(f"/api/evaluation/evaluations/{ev.pk}/images/", {"factor": "pose"}).json()
    with_pixels = [it for it in data["items"] if it["image_id"]]
    assert with_pixels
    r = c.get(f"/evaluation/{ev.pk}/images/{with_pixels[0]['image_id']}.jpg")
    assert r.status_code == 200 and r["Content-Type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    html = c.get(f"/evaluation/{ev.pk}/images/", {"factor": "pose"}).content.decode()
    assert f"/evaluation/{ev.pk}/images/{with_pixels[0]['image_id']}.jpg" in html
