"""A release records (as a real foreign key) the prototype run its files and datasheet describe."""

from __future__ import annotations

import csv
import json

import pytest
from django.db.models import ProtectedError
from django.urls import reverse

from catalog.models import Annotation, Dataset, Image, ImageClass
from exports import services
from prototypes.models import Prototype, PrototypeRun
from tests.conftest import client_for
from tests.exports.factories import curation_run_from_final


def _dataset_with_a_current_prototype_run():
    ds = Dataset.objects.create(slug="protods", name="Prototype photos")
    cls = ImageClass.objects.create(dataset=ds, index=0, wnid="n01440764", name="tench", meta_label="other")
    imgs = [Image.objects.create(dataset=ds, split="val", image_class=cls, file_name=f"p{i}.jpg") for i in range(3)]
    for img in imgs[1:]:
        Annotation.objects.create(image=img, source="imported", status="accepted", color=True, justification="red")
    run = PrototypeRun.objects.create(dataset=ds, status="done", is_current=True, model_name="resnet18", seed=4)
    Prototype.objects.create(run=run, image_class=cls, image=imgs[0], rank=1, probability=0.9, predicted_class=0)
    return ds, run


@pytest.mark.embedded
def test_a_build_records_the_current_prototype_run_and_its_datasheet_names_it(db, build, maintainer):
    ds, run = _dataset_with_a_current_prototype_run()
    release = build(curation_run_from_final(ds))
    assert release.status == "built"
    assert release.prototype_run_id == run.pk
    folder = services.release_dir(release)
    sheet = json.loads((folder / "datasheet.json").read_text())
    prototypes = sheet["collection_process"]["Prototypes"]
    assert prototypes["run_id"] == run.pk
    assert prototypes["model_name"] == "resnet18" and prototypes["seed"] == 4
    with open(folder / "prototypical_paths.csv", newline="") as fh:
        assert "p0.jpg" in fh.read()
    api = client_for(maintainer)
    assert api.get(reverse("exports-api:detail", args=[release.pk])).json()["prototype_run"] == run.pk


@pytest.mark.embedded
def test_a_prototype_run_described_by_a_release_cannot_be_deleted(db, build, maintainer):
    ds, run = _dataset_with_a_current_prototype_run()
    release = build(curation_run_from_final(ds))
    services.release_publish(release_id=release.pk, user=maintainer)
    with pytest.raises(ProtectedError):
        run.delete()
    release.refresh_from_db()
    assert release.status == "published" and release.prototype_run_id == run.pk


@pytest.mark.embedded
def test_without_a_prototype_run_the_release_records_none(db, build):
    ds = Dataset.objects.create(slug="plain", name="Plain photos")
    cls = ImageClass.objects.create(dataset=ds, index=0, wnid="n01440764", name="tench", meta_label="other")
    img = Image.objects.create(dataset=ds, split="val", image_class=cls, file_name="a.jpg")
    Annotation.objects.create(image=img, source="imported", status="accepted", pose=True, justification="turned")
    release = build(curation_run_from_final(ds))
    assert release.status == "built" and release.prototype_run_id is None
    sheet = json.loads((services.release_dir(release) / "datasheet.json").read_text())
    assert "stand-ins" in sheet["collection_process"]["Prototypes"]["source"]
    with open(services.release_dir(release) / "prototypical_paths.csv", newline="") as fh:
        assert next(csv.reader(fh)) == ["file_name"]
