"""The real ImageNet-X release, imported once for this module, checked against counts that
pandas and the imagenet_x package compute independently from the same files."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import Count

from catalog.factors import FACTOR_KEYS
from catalog.importers import RELEASE_NAME, default_release_path
from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass, ReferencePrototype
from catalog.selectors import factor_counts
from catalog.services import IMAGENET_X_SLUG
from tests.conftest import committed_imagenet_x_release

pytestmark = pytest.mark.postgres

RELEASE = default_release_path()


def _release_frame(which: str, split: str) -> pd.DataFrame:
    from imagenet_x.utils import load_annotations

    return load_annotations(which_factor=which, partition=split, filter_prototypes=False)


@pytest.fixture(scope="module")
def imported(django_db_setup, django_db_blocker):
    """Import the real release once (committed); the catalogue is emptied when the module ends."""
    with committed_imagenet_x_release(django_db_blocker) as result:
        yield result


def _annotations(split: str):
    return Annotation.objects.filter(image__dataset__slug=IMAGENET_X_SLUG, image__split=split, source="imported")


@pytest.mark.parametrize("split", ["val", "train"])
def test_multi_factor_counts_equal_the_release_files(imported, db, split):
    frame = _release_frame("multi", split)
    expected = {k: int(frame[k].sum()) for k in FACTOR_KEYS}
    assert factor_counts(_annotations(split)) == expected
    assert _annotations(split).count() == len(frame)


def test_val_counts_are_the_published_ones(imported, db):
    counts = factor_counts(_annotations("val"))
    assert (counts["pose"], counts["background"], counts["multiple_objects"]) == (42_525, 37_555, 1_872)
    assert _annotations("val").count() == 48_868 and _annotations("train").count() == 11_233


@pytest.mark.parametrize("split", ["val", "train"])
def test_top_factor_counts_equal_the_release_files(imported, db, split):
    frame = _release_frame("top", split)
    expected = {k: int(frame[k].sum()) for k in FACTOR_KEYS if frame[k].sum()}
    rows = _annotations(split).exclude(reference_top_factor="").values("reference_top_factor").annotate(n=Count("id"))
    assert {r["reference_top_factor"]: r["n"] for r in rows} == expected
    assert _annotations(split).filter(reference_top_factor="").count() == int(
        (frame[list(FACTOR_KEYS)].sum(axis=1) == 0).sum()
    )


def test_classes_and_meta_labels_follow_the_release_mapping(imported, db):
    from imagenet_x.utils import to_metaclass

    classes = ImageClass.objects.filter(dataset__slug=IMAGENET_X_SLUG)
    assert classes.count() == 1000
    expected = to_metaclass(pd.Series(range(1000)), RELEASE / "imagenet_1k_classes_to_100_metaclasses.csv")
    assert list(classes.order_by("index").values_list("meta_label", flat=True)) == list(expected)
    cat = classes.get(index=285)
    assert (cat.wnid, cat.name) == ("n02124075", "Egyptian cat")


def test_annotation_text_and_provenance_are_kept(imported, db):
    frame = _release_frame("multi", "val").set_index("file_name")
    a = Annotation.objects.select_related("image__image_class").get(image__file_name="ILSVRC2012_val_00004487.JPEG")
    row = frame.loc["ILSVRC2012_val_00004487.JPEG"]
    assert (a.justification, a.one_word) == (row["justification"], row["one_word"])
    assert a.image.image_class.index == row["class"]
    assert a.selected_factors == [k for k in FACTOR_KEYS if row[k]]
    assert (a.source, a.status, a.source_release, a.annotator_id) == ("imported", "accepted", RELEASE_NAME, None)
    assert a.reference_top_factor == "larger"  # the single factor set in the top-factor file


def test_every_imported_annotation_has_its_version_one(imported, db):
    n = Annotation.objects.filter(source_release=RELEASE_NAME).count()
    versions = AnnotationVersion.objects.filter(annotation__source_release=RELEASE_NAME)
    assert versions.filter(version=1, reason="import").count() == n == 60_101


def test_published_prototypes_are_reference_rows_with_images(imported, db):
    names = pd.read_csv(RELEASE / "prototypical_paths.csv").file_name
    protos = ReferencePrototype.objects.filter(dataset__slug=IMAGENET_X_SLUG)
    assert protos.count() == len(names) == 3000
    assert set(protos.values_list("file_name", flat=True)) == set(names)
    per_class = protos.values("image_class").annotate(n=Count("id"))
    assert {r["n"] for r in per_class} == {3} and len(per_class) == 1000
    images = Image.objects.filter(dataset__slug=IMAGENET_X_SLUG)
    assert images.filter(file_name__in=list(names)).count() == 3000
    # Annotations only: no pixel files are stored for this dataset.
    assert not images.exclude(relpath="").exists() and not images.filter(readable__isnull=False).exists()


def test_second_import_changes_nothing_and_says_so(imported, db):
    tables = [Dataset, ImageClass, Image, Annotation, AnnotationVersion, ReferencePrototype]
    before = [m.objects.count() for m in tables]
    out = io.StringIO()
    call_command("import_imagenet_x", stdout=out)
    assert "already imported" in out.getvalue() and "nothing changed" in out.getvalue()
    assert [m.objects.count() for m in tables] == before
