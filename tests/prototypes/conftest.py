"""Fixtures for the prototype service: tiny generated JPEGs, a small random-weight model, a dataset.

The model is a real torchvision ResNet-18 with random weights (seeded) at 32x32 input, so
every test runs the real engine in well under a second per batch on 2 shared cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from prototypes import engine

TINY = dict(name="resnet18", weights="none", seed=0, image_size=32)


def write_jpeg(path: Path, *, seed: int, size: tuple[int, int] = (60, 45), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    # Smooth random blobs (upsampled noise) compress like photos rather than like static.
    small = rng.integers(0, 255, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    img = PILImage.fromarray(small).resize((w, h), PILImage.Resampling.BILINEAR)
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode in ("RGBA", "LA", "P"):
        img.save(path.with_suffix(".png"))
        return path.with_suffix(".png")
    img.save(path, quality=85)
    return path


@pytest.fixture(scope="session")
def tiny_model() -> engine.LoadedModel:
    return engine.load_model(engine.ModelSpec(**TINY))


@pytest.fixture
def opts() -> engine.ScoreOptions:
    return engine.ScoreOptions(device="cpu", batch_size=4, num_workers=0, threads=1)


@pytest.fixture
def jpeg_items(tmp_path) -> list[engine.Item]:
    """24 distinct photos-like JPEGs over 4 classes."""
    items = []
    for i in range(24):
        p = write_jpeg(tmp_path / "imgs" / f"img_{i:03d}.JPEG", seed=i, size=(60 + 3 * i, 45 + 2 * i))
        items.append(engine.Item(p.name, str(p), i % 4))
    return items


def relabel_as_predicted(items, loaded, opts) -> list[engine.Item]:
    """Give half the items their predicted class as label, so a random network gets some right."""
    preds: dict[str, int] = {}
    engine.score(items, loaded, opts, sink=lambda key, label, pred, prob, tp: preds.__setitem__(key, pred))
    return [engine.Item(it.key, it.path, preds[it.key] if n % 2 == 0 else it.label) for n, it in enumerate(items)]


@pytest.fixture
def dataset_factory(tmp_path):
    """make(n_images, n_classes) -> Dataset with real JPEG files under tmp_path (class i = ImageNet index i*7)."""
    from catalog.models import Dataset, Image, ImageClass

    def make(n_images: int = 12, n_classes: int = 3, slug: str = "tiny", bad: dict[str, bytes] | None = None):
        root = tmp_path / slug
        ds = Dataset.objects.create(slug=slug, name=slug, root=str(root))
        classes = [ImageClass.objects.create(dataset=ds, index=c * 7, name=f"class {c}") for c in range(n_classes)]
        for i in range(n_images):
            name = f"{slug}_{i:04d}.JPEG"
            write_jpeg(root / "val" / name, seed=1000 + i, size=(64 + i, 48 + i))
            Image.objects.create(
                dataset=ds,
                split="val",
                image_class=classes[i % n_classes],
                file_name=name,
                relpath=f"val/{name}",
                readable=True,
            )
        for j, (name, data) in enumerate((bad or {}).items()):
            (root / "val" / name).write_bytes(data)
            Image.objects.create(
                dataset=ds,
                split="val",
                image_class=classes[j % n_classes],
                file_name=name,
                relpath=f"val/{name}",
                readable=True,
            )
        return ds

    return make


# A tiny, fast model run through the real command (random weights, explicitly).
TINY_ARGS = ["--model", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "4", "--workers", "0"]


def compute_tiny(ds, *extra: str):
    """Run `compute_prototypes` on `ds` with the tiny settings; return the newest run."""
    import io

    from django.core.management import call_command

    from prototypes.models import PrototypeRun

    call_command(
        "compute_prototypes", "--dataset", ds.slug, *TINY_ARGS, *extra, stdout=io.StringIO(), stderr=io.StringIO()
    )
    return PrototypeRun.objects.filter(dataset=ds).order_by("-id").first()
