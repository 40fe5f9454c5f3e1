"""The demo set: real photographs shipped by installed packages, and variants whose factors
of variation are known by construction (pure Python + Pillow: no Django imports, no downloads).

Five ImageNet classes, one real photo each (scikit-image's data folder, scikit-learn's sample
images, matplotlib's sample data). Each class gets 3 base crops (typical views, candidates for
prototypes) and 12 variants derived from the first base crop by a transform whose effect is
one of the 16 factors (flip/rotate -> pose, crop -> partial_view, darken -> darker, ...).
Those known factors are gold answers for qualification and quality checks later.

Everything is deterministic: the same Pillow version writes the same bytes.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from catalog.factors import FACTOR_KEYS

MAX_SIDE = 320  # big enough to see the factor, small enough to keep the demo set ~2 MB
JPEG_QUALITY = 88


def _package_dir(name: str) -> Path:
    """Where an installed package lies, without importing it (importing scikit-learn takes ~2 s)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the demo set needs the {name} package (pip install -r requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0])


def _skimage_data(name: str) -> Path:
    return _package_dir("skimage") / "data" / name


def _sklearn_image(name: str) -> Path:
    return _package_dir("sklearn") / "datasets" / "images" / name


def _matplotlib_sample(name: str) -> Path:
    return _package_dir("matplotlib") / "mpl-data" / "sample_data" / name


@dataclass(frozen=True, slots=True)
class DemoClass:
    slug: str  # file-name prefix
    index: int  # ImageNet-1k class index
    wnid: str
    name: str  # ImageNet's label (imagenet_labels.txt)
    source: Callable[[], Path]
    # Where the object is in the photo, as fractions (left, top, right, bottom).
    box: tuple[float, float, float, float]
    credit: str


DEMO_CLASSES: tuple[DemoClass, ...] = (
    DemoClass(
        "tabby",
        281,
        "n02123045",
        "tabby",
        lambda: _skimage_data("chelsea.png"),
        (0.08, 0.0, 1.0, 1.0),
        "scikit-image data: chelsea.png (Stefan van der Walt's cat)",
    ),
    DemoClass(
        "espresso",
        967,
        "n07920052",
        "espresso",
        lambda: _skimage_data("coffee.png"),
        (0.05, 0.0, 0.78, 0.95),
        "scikit-image data: coffee.png (Rachel Michetti)",
    ),
    DemoClass(
        "military_uniform",
        652,
        "n03763968",
        "military uniform",
        lambda: _matplotlib_sample("grace_hopper.jpg"),
        (0.02, 0.0, 0.98, 1.0),
        "matplotlib sample data: grace_hopper.jpg (U.S. Navy portrait, public domain)",
    ),
    DemoClass(
        "palace",
        698,
        "n03877845",
        "palace",
        lambda: _sklearn_image("china.jpg"),
        (0.05, 0.05, 0.6, 1.0),
        "scikit-learn sample images: china.jpg (Summer Palace, Beijing)",
    ),
    DemoClass(
        "missile",
        657,
        "n03773504",
        "missile",
        lambda: _skimage_data("rocket.jpg"),
        (0.3, 0.2, 0.7, 1.0),
        "scikit-image data: rocket.jpg (SpaceX Falcon 9 on the pad, public domain)",
    ),
)

# Backgrounds for the "shrunk onto another scene" variants: real photos of no demo class, and
# where to put the object so that it does not cover the scene's own subject.
BACKGROUNDS: tuple[tuple[Callable[[], Path], tuple[float, float]], ...] = (
    (lambda: _sklearn_image("flower.jpg"), (0.04, 0.08)),  # dark leaves, left of the dahlia
    (lambda: _skimage_data("motorcycle_left.png"), (0.06, 0.6)),  # garage floor, left of the motorbike
)


@dataclass(frozen=True, slots=True)
class DemoImage:
    relpath: str  # under the demo folder: <wnid>/<file>
    wnid: str
    known_factors: tuple[str, ...] | None  # None for base crops (nothing is known to differ)
    derived_from: str | None  # relpath of the base crop it was made from
    transform: str


def _load(path: Path) -> Image.Image:
    if not path.is_file():
        raise FileNotFoundError(f"demo source photo missing: {path} (is its package installed?)")
    with Image.open(path) as im:
        return im.convert("RGB")


def _fit(im: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    scale = max_side / max(im.size)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def _crop_frac(im: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = im.size
    left, top, right, bottom = box
    return im.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))


def _around(
    box: tuple[float, float, float, float], margin: float, dx: float = 0.0, dy: float = 0.0
) -> tuple[float, float, float, float]:
    """The object's box grown by `margin` and shifted, clamped to the photo."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    return (
        max(0.0, left - margin * w + dx),
        max(0.0, top - margin * h + dy),
        min(1.0, right + margin * w + dx),
        min(1.0, bottom + margin * h + dy),
    )


def _hue_shift(im: Image.Image, shift: int) -> Image.Image:
    h, s, v = im.convert("HSV").split()
    h = h.point(lambda x: (x + shift) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def _rotate(im: Image.Image, degrees: float) -> Image.Image:
    # Rotate, then crop the centre so no black corner is left (a black corner would add a
    # second, unintended difference).
    rotated = im.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)
    return _crop_frac(rotated, (0.17, 0.17, 0.83, 0.83))


def _sketch(im: Image.Image) -> Image.Image:
    gray = ImageOps.grayscale(im).filter(ImageFilter.SMOOTH_MORE)
    edges = ImageOps.invert(gray.filter(ImageFilter.FIND_EDGES))
    return ImageOps.autocontrast(edges, cutoff=2).convert("RGB")


def _onto(obj: Image.Image, scene: Image.Image, frac: float, at: tuple[float, float]) -> Image.Image:
    """Paste `obj` scaled to `frac` of the scene's width at fractional position `at`."""
    scene = _fit(scene.copy())
    small = obj.resize(
        (max(1, round(scene.width * frac)), max(1, round(scene.width * frac * obj.height / obj.width))),
        Image.Resampling.LANCZOS,
    )
    x = round((scene.width - small.width) * at[0])
    y = round((scene.height - small.height) * at[1])
    scene.paste(small, (x, y))
    return scene


def _variants(
    cls: DemoClass,
    photo: Image.Image,
    base: Image.Image,
    other: Image.Image,
    background: tuple[Image.Image, tuple[float, float]],
) -> list[tuple[str, tuple[str, ...], Image.Image]]:
    """(name, known factors, image) for each variant of the class's first base crop."""
    obj = _crop_frac(photo, cls.box)
    left, top, right, bottom = cls.box
    return [
        ("flip", ("pose",), ImageOps.mirror(base)),
        ("rotate", ("pose",), _rotate(base, 35)),
        ("partial", ("partial_view",), _crop_frac(photo, (left, top, left + 0.5 * (right - left), bottom))),
        (
            "zoom",
            ("larger", "partial_view"),
            _crop_frac(
                photo,
                _around(
                    (
                        left + 0.3 * (right - left),
                        top + 0.25 * (bottom - top),
                        left + 0.7 * (right - left),
                        top + 0.65 * (bottom - top),
                    ),
                    0.0,
                ),
            ),
        ),
        ("darker", ("darker",), ImageEnhance.Brightness(base).enhance(0.35)),
        ("brighter", ("brighter",), ImageEnhance.Brightness(base).enhance(1.9)),
        ("hue", ("color",), _hue_shift(base, 110)),
        ("grayscale", ("style",), ImageOps.grayscale(base).convert("RGB")),
        ("sketch", ("style",), _sketch(base)),
        ("small_on_scene", ("smaller", "background"), _onto(obj, background[0], 0.28, background[1])),
        ("second_object", ("multiple_objects",), _paste_corner(base, other, 0.3)),
        ("blocked", ("object_blocking", "multiple_objects"), _paste_center(base, other, 0.45)),
    ]


def _paste_corner(base: Image.Image, other: Image.Image, frac: float) -> Image.Image:
    out = base.copy()
    small = other.resize(
        (round(base.width * frac), round(base.width * frac * other.height / other.width)), Image.Resampling.LANCZOS
    )
    out.paste(small, (base.width - small.width - 4, base.height - small.height - 4))
    return out


def _paste_center(base: Image.Image, other: Image.Image, frac: float) -> Image.Image:
    out = base.copy()
    small = other.resize(
        (round(base.width * frac), round(base.width * frac * other.height / other.width)), Image.Resampling.LANCZOS
    )
    out.paste(small, ((base.width - small.width) // 2, (base.height - small.height) // 2 + base.height // 8))
    return out


def _encode(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    _fit(im).save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: a reader never sees half a file
    return True


def build_demo_images(dest: Path) -> tuple[list[DemoImage], int]:
    """Write the demo photos under dest/<wnid>/ and return (their specs, files written)."""
    dest = Path(dest)
    photos = {c.slug: _load(c.source()) for c in DEMO_CLASSES}
    backgrounds = [(_load(b()), at) for b, at in BACKGROUNDS]
    specs: list[DemoImage] = []
    written = 0
    for i, cls in enumerate(DEMO_CLASSES):
        photo = photos[cls.slug]
        bases = [
            _crop_frac(photo, _around(cls.box, 0.04)),
            _crop_frac(photo, _around(cls.box, 0.10, dx=-0.03)),
            _crop_frac(photo, _around(cls.box, 0.0, dy=0.02)),
        ]
        base_rel = []
        for n, im in enumerate(bases, 1):
            rel = f"{cls.wnid}/{cls.slug}_base{n}.jpg"
            written += _write_if_changed(dest / rel, _encode(im))
            specs.append(DemoImage(rel, cls.wnid, None, None, f"crop {n} of the photo"))
            base_rel.append(rel)
        # Another class's object (for multiple_objects / object_blocking) and a background scene.
        other_cls = DEMO_CLASSES[(i + 1) % len(DEMO_CLASSES)]
        other = _crop_frac(photos[other_cls.slug], other_cls.box)
        base = _fit(bases[0])
        for name, factors, im in _variants(cls, photo, base, other, backgrounds[i % len(backgrounds)]):
            assert set(factors) <= set(FACTOR_KEYS), factors
            rel = f"{cls.wnid}/{cls.slug}_{name}.jpg"
            written += _write_if_changed(dest / rel, _encode(im))
            specs.append(DemoImage(rel, cls.wnid, factors, base_rel[0], name))
    return specs, written
