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


@pytest.fixture
def dataset(db, tmp_path):
    return make_dataset(tmp_path)
