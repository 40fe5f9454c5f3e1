"""Datasheet figures for data collected on the platform: annotators, multi-review, agreement."""

from __future__ import annotations

import json

import pytest

from catalog.models import Annotation, Dataset, Image, ImageClass
from exports import services
from tests.exports.factories import curation_run_from_final


def test_datasheet_counts_annotators_multi_review_and_agreement(db, build, annotator, other_annotator):
    ds = Dataset.objects.create(slug="demo", name="Demo photos")
    cls = ImageClass.objects.create(dataset=ds, index=0, wnid="n01440764", name="tench", meta_label="other")
    imgs = [Image.objects.create(dataset=ds, split="val", image_class=cls, file_name=f"p{i}.jpg") for i in range(4)]
    # p0 and p1 are multi-reviewed: both agree on pose; on background they agree for p0 only.
    for img, bg2 in ((imgs[0], False), (imgs[1], True)):
        Annotation.objects.create(image=img, annotator=annotator, pose=True, justification="turned")
        Annotation.objects.create(
            image=img, annotator=other_annotator, pose=True, background=bg2, justification="turned, grass"
        )
        Annotation.objects.create(image=img, source="consensus", status="accepted", pose=True, justification="turned")
    for img in imgs[2:]:
        Annotation.objects.create(image=img, annotator=annotator, status="accepted", color=True, justification="red")
    release = build(curation_run_from_final(ds, params={"method": "paper", "spacy_model": "en_core_web_md"}))
    sheet = json.loads((services.release_dir(release) / "datasheet.json").read_text())
    collection = sheet["collection_process"]
    assert collection["Annotators"]["distinct_annotators"] == 2
    assert collection["Annotators"]["user_annotations"] == 6
    review = collection["Multi-review"]
    assert review["images_with_two_or_more_annotators"] == 2 and review["coverage"] == 0.5
    assert review["agreement_per_factor"]["pose"] == 1.0
    assert review["agreement_per_factor"]["background"] == 0.5
    assert collection["Sources of the final answers"] == {"consensus": 2, "user": 2}
    assert sheet["preprocessing_cleaning_labeling"]["Curation method"] == "paper"
    assert "stand-ins" in collection["Prototypes"]["source"]


@pytest.mark.embedded
def test_prototype_run_model_and_weights_go_into_the_datasheet():
    from datetime import UTC, datetime

    from exports.selectors import prototype_run_info
    from prototypes.models import PrototypeRun

    run = PrototypeRun(
        pk=7,
        model_name="resnet50",
        weights="IMAGENET1K_V1",
        weights_sha256="ab" * 32,
        seed=0,
        preprocessing={"resize": 256, "crop": 224},
        finished_at=datetime(2026, 1, 2, tzinfo=UTC),
        device="cuda:0",
    )
    info = prototype_run_info(run)
    assert info == {
        "run_id": 7,
        "source": "model",
        "model_name": "resnet50",
        "weights": "IMAGENET1K_V1",
        "weights_id": "",
        "weights_sha256": "ab" * 32,
        "checkpoint": "",
        "seed": 0,
        "k": 3,
        "preprocessing": {"resize": 256, "crop": 224},
        "library_versions": {},
        "finished_at": "2026-01-02T00:00:00+00:00",
    }
