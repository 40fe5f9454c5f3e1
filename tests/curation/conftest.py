"""Small hand-made datasets for curation tests (real rows, real spaCy vectors)."""

from __future__ import annotations

import pytest

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Dataset, Image, ImageClass

# (justification, one_word, selected factors, split, class index)
TEXTS = [
    ("the dog is dark in a dim room", "darker", ["darker", "background"], "val", 0),
    ("a drawing of a dog in sketch style", "sketch", ["style", "pose"], "val", 0),
    ("the car is bright red with a striped pattern", "stripes", ["pattern", "color"], "train", 1),
    ("only part of the car is visible, cropped", "cropped", ["partial_view", "pose"], "train", 1),
    ("a tiny bird far away", "small", ["smaller"], "val", 2),
    ("bird on a strange background of snow", "snow", ["background", "color", "pose"], "train", 2),
    ("xqzt vvbn", "", ["pose", "background"], "val", 0),
    ("a person holds the car toy in hand", "hand", ["person_blocking", "multiple_objects"], "train", 1),
]


def make_dataset(slug: str = "tiny", copies: int = 1, meta_labels=("dog", "wheeled_vehicle", "bird")) -> Dataset:
    ds = Dataset.objects.create(slug=slug, name=slug.title())
    classes = [
        ImageClass.objects.create(dataset=ds, index=i, name=f"class {i}", meta_label=m, wnid=f"n0000000{i}")
        for i, m in enumerate(meta_labels)
    ]
    n = 0
    for c in range(copies):
        for j, (text, one, factors, split, cls) in enumerate(TEXTS):
            img = Image.objects.create(dataset=ds, split=split, image_class=classes[cls], file_name=f"img_{c}_{j}.JPEG")
            Annotation.objects.create(
                image=img,
                source="imported",
                status="accepted",
                source_release="test-release",
                justification=text,
                one_word=one,
                reference_top_factor=factors[0],
                **{k: (k in factors) for k in FACTOR_KEYS},
            )
            n += 1
    return ds


@pytest.fixture
def tiny_dataset(db):
    return make_dataset()
