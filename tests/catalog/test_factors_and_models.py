import pytest
from django.db import IntegrityError

from catalog.factors import FACTOR_KEYS, FACTORS, RELEASE_FACTOR_ORDER, factor_keys_from_mask, factor_mask
from catalog.models import Annotation, AnnotationSource, Dataset, Image, ImageClass
from catalog.selectors import factor_counts, factor_pair_counts


def test_factor_keys_are_the_sixteen_imagenet_x_keys():
    import imagenet_x.utils

    assert set(FACTOR_KEYS) == set(imagenet_x.utils.FACTORS)
    assert len(FACTORS) == 16 and set(RELEASE_FACTOR_ORDER) == set(FACTOR_KEYS)
    assert FACTORS[0].wording == "pose / positioning"
    assert len({f.shortcut for f in FACTORS}) == 16


def test_factor_mask_round_trips():
    flags = {"pose": 1, "texture": True, "color": 0}
    assert factor_keys_from_mask(factor_mask(flags)) == ["pose", "texture"]


@pytest.fixture
def two_images(db):
    ds = Dataset.objects.create(slug="d", name="d")
    c = ImageClass.objects.create(dataset=ds, index=0, name="tench")
    return [Image.objects.create(dataset=ds, split="val", image_class=c, file_name=f"x{i}.jpg") for i in range(2)]


@pytest.mark.embedded
def test_database_counts_factors_and_pairs(two_images, annotator):
    Annotation.objects.create(image=two_images[0], annotator=annotator, pose=True, background=True)
    Annotation.objects.create(image=two_images[1], source=AnnotationSource.IMPORTED, source_release="r", pose=True)
    qs = Annotation.objects.all()
    counts = factor_counts(qs)
    assert counts["pose"] == 2 and counts["background"] == 1 and counts["color"] == 0
    pairs = factor_pair_counts(qs)
    assert pairs[("pose", "background")] == 1 and len(pairs) == 120


@pytest.mark.embedded
def test_one_annotation_per_annotator_and_image(two_images, annotator):
    Annotation.objects.create(image=two_images[0], annotator=annotator)
    with pytest.raises(IntegrityError):
        Annotation.objects.create(image=two_images[0], annotator=annotator)


@pytest.mark.embedded
def test_user_annotation_needs_an_annotator(two_images):
    with pytest.raises(IntegrityError):
        Annotation.objects.create(image=two_images[0], source=AnnotationSource.USER)
