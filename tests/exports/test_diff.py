"""The diff between two releases of a dataset."""

from __future__ import annotations

import pytest

from catalog.models import Annotation, Dataset, Image, ImageClass
from curation.models import CuratedImage
from exports import services
from exports.selectors import release_diff
from infra.errors import DomainError
from tests.exports.factories import curation_run_from_final

pytestmark = pytest.mark.embedded  # no PostgreSQL-only feature: also runs on the embedded default


def test_diff_reports_added_removed_flag_and_top_factor_changes(done_run, build, imagenet_x):
    old = build(done_run, version="1.0.0")
    run2 = curation_run_from_final(imagenet_x)
    rows = list(CuratedImage.objects.filter(run=run2).select_related("image").order_by("image_id"))
    removed, changed = rows[0], rows[1]
    removed.delete()
    changed.pose = not changed.pose
    changed.top_factor = "texture" if changed.top_factor != "texture" else "pose"
    changed.save()
    kept_old = CuratedImage.objects.filter(run=done_run).order_by("image_id")[2]
    CuratedImage.objects.filter(run=done_run, pk=kept_old.pk).delete()  # so run2 "adds" it
    new = build(run2, version="1.1.0")
    diff = release_diff(old=old, new=new)
    assert diff["removed"] == {"count": 1, "examples": [removed.image.file_name]}
    assert diff["added"]["count"] == 1
    assert diff["changed_images"] == 1 and diff["top_factor_changed"] == 1
    key = "gained" if changed.pose else "lost"
    assert diff["flag_changes"]["pose"][key] == 1
    assert diff["changed_examples"][0]["file_name"] == changed.image.file_name
    deltas = diff["factor_count_deltas"]
    expected_pose = (1 if changed.pose else -1) - int(removed.pose) + int(kept_old.pose)
    assert deltas["pose"]["delta"] == expected_pose


def test_diff_of_a_release_with_itself_is_empty(done_run, build):
    release = build(done_run)
    diff = release_diff(old=release, new=release)
    assert diff["added"]["count"] == diff["removed"]["count"] == diff["changed_images"] == 0
    assert all(v["delta"] == 0 for v in diff["factor_count_deltas"].values())


def test_diff_across_datasets_is_refused(done_run, build, maintainer):
    release = build(done_run)
    other = Dataset.objects.create(slug="demo", name="Demo")
    cls = ImageClass.objects.create(dataset=other, index=0, name="tench")
    img = Image.objects.create(dataset=other, split="val", image_class=cls, file_name="a.jpg")
    Annotation.objects.create(image=img, source="imported", status="accepted", source_release="x", pose=True)
    run = curation_run_from_final(other)
    other_release = services.release_create(dataset=other, version="1.0.0", curation_run=run, created_by=maintainer)
    with pytest.raises(DomainError, match="same dataset"):
        release_diff(old=release, new=other_release)
