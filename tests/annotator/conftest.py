"""Fixtures for the annotator tests: a tiny dataset with real image files and a campaign."""

from __future__ import annotations

import pytest
from PIL import Image as PILImage

from catalog.models import Dataset, Image, ImageClass


def make_dataset(
    tmp_path, *, n_images: int = 6, n_classes: int = 2, n_gold: int = 3, slug: str = "tiny", files: bool = True
) -> Dataset:
    """A dataset with `n_images` plain images and `n_gold` known-factor variants, as real JPEG files."""
    root = tmp_path / f"ds-{slug}"
    root.mkdir(parents=True, exist_ok=True)
    ds = Dataset.objects.create(slug=slug, name=slug, root=str(root))
    classes = [ImageClass.objects.create(dataset=ds, index=i, name=f"class {i}") for i in range(n_classes)]
    rows = []
    for i in range(n_images + n_gold):
        name = f"img_{i:05d}.jpg"
        if files:
            PILImage.new("RGB", (64, 48), ((i * 37) % 255, 90, 160)).save(root / name)
        gold = i >= n_images
        rows.append(
            Image(
                dataset=ds,
                split="val",
                image_class=classes[i % n_classes],
                file_name=name,
                relpath=name if files else "",
                readable=True if files else None,
                width=64,
                height=48,
                known_factors=(["darker"] if i % 2 else ["pose", "background"]) if gold else None,
            )
        )
    Image.objects.bulk_create(rows)
    return ds


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The role fixtures hash passwords; PBKDF2's deliberate slowness only slows these tests down."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dataset(db, tmp_path):
    return make_dataset(tmp_path)


def answer(**over):
    from annotator.services import answer_clean

    data = {"factors": ["pose"], "nothing_differs": False, "justification": "turned sideways", "one_word": "pose"}
    data.update(over)
    return answer_clean(**data)


@pytest.fixture
def campaign(dataset):
    """6 work images (2 of them overlap x3 at fraction 1/3), no qualification set, no gold."""
    from annotator.services import campaign_create

    return campaign_create(name="tiny", dataset=dataset, overlap_fraction=1 / 3, overlap_copies=3, gold_rate=0.0)


@pytest.fixture
def qualified_campaign(dataset):
    """The same campaign with the 3 known-factor variants as its qualification set."""
    from annotator.models import GoldKind
    from annotator.services import campaign_create, gold_items_add

    c = campaign_create(name="with-qual", dataset=dataset, overlap_fraction=0.0, overlap_copies=2, gold_rate=0.0)
    gold_items_add(
        campaign=c,
        images=Image.objects.filter(dataset=dataset, known_factors__isnull=False),
        kind=GoldKind.QUALIFICATION,
    )
    return c
