"""The 16 factors of variation and the 17 meta-labels: the one source of truth.

Keys are spelled exactly as the public ImageNet-X release spells them. Every other
module imports from here; nothing else in the code base may re-spell these lists.
This module imports nothing from Django so that pure compute code can use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Factor:
    key: str
    wording: str  # the label of the paper's annotation form
    definition: str  # the paper's one-line definition (shown on hover)
    shortcut: str  # keyboard shortcut on the form


# Order = the paper's annotation form (ImageNet-X, Idrissi et al., Fig. 1 / Table 1).
FACTORS: tuple[Factor, ...] = (
    Factor(
        "pose",
        "pose / positioning",
        "The object has a different pose or is placed in a different location within the image.",
        "1",
    ),
    Factor(
        "partial_view",
        "object is partially present",
        "The object is visible only partially due to the camera field of view that did not "
        "contain the full object, e.g. cropped out.",
        "2",
    ),
    Factor(
        "object_blocking",
        "object partially blocked by another object",
        "The object is occluded by another object present in the image.",
        "3",
    ),
    Factor(
        "person_blocking",
        "object partially blocked by a person",
        "The object is occluded by a person or human body part; this might include objects manipulated by human hands.",
        "4",
    ),
    Factor(
        "multiple_objects",
        "another object is present",
        "There is at least one other prominent object present in the image.",
        "5",
    ),
    Factor(
        "smaller",
        "object is small relative to the image frame",
        "Object occupies only a small portion of the entire scene.",
        "6",
    ),
    Factor("larger", "object is large relative to the image frame", "Object dominates the image.", "7"),
    Factor(
        "brighter",
        "lighting is brighter",
        "The lighting in the image is brighter when compared to the prototypical images.",
        "8",
    ),
    Factor(
        "darker",
        "lighting is darker",
        "The lighting in the image is darker when compared to the prototypical images.",
        "9",
    ),
    Factor(
        "background",
        "background",
        "The background of the image is different from backgrounds of the prototypical images.",
        "0",
    ),
    Factor("color", "color", "The object has a different color.", "q"),
    Factor("shape", "shape", "The object has a different shape.", "w"),
    Factor("texture", "texture", "The object has a different texture, e.g. a sheep that's sheared.", "e"),
    Factor("pattern", "pattern", "The object has a different pattern, e.g. a striped object.", "r"),
    Factor("style", "media style", "The overall image style is different, e.g. a sketch.", "t"),
    Factor(
        "subcategory",
        "subcategory",
        "The object is a distinct type or breed from the same class, e.g. a mini-van within the car class.",
        "y",
    ),
)

FACTOR_KEYS: tuple[str, ...] = tuple(f.key for f in FACTORS)
FACTORS_BY_KEY: dict[str, Factor] = {f.key: f for f in FACTORS}

# Key order of the public release files, after `file_name` and `class` and before
# `justification` and `one_word`.
RELEASE_FACTOR_ORDER: tuple[str, ...] = (
    "multiple_objects",
    "background",
    "color",
    "brighter",
    "darker",
    "style",
    "larger",
    "smaller",
    "object_blocking",
    "person_blocking",
    "partial_view",
    "pattern",
    "pose",
    "shape",
    "subcategory",
    "texture",
)
RELEASE_KEY_ORDER: tuple[str, ...] = ("file_name", "class", *RELEASE_FACTOR_ORDER, "justification", "one_word")

# The paper's 17 meta-labels (ImageNet-X Sec. 3; `other` collects every remaining class).
META_LABELS: tuple[str, ...] = (
    "device",
    "dog",
    "commodity",
    "bird",
    "structure",
    "covering",
    "wheeled_vehicle",
    "food",
    "equipment",
    "insect",
    "vehicle",
    "furniture",
    "primate",
    "vessel",
    "snake",
    "natural_object",
    "other",
)

assert set(RELEASE_FACTOR_ORDER) == set(FACTOR_KEYS) and len(FACTOR_KEYS) == 16


def factor_mask(flags: dict[str, object]) -> int:
    """Bit i set when FACTORS[i] is selected (used by compute code as a compact mask)."""
    return sum(1 << i for i, k in enumerate(FACTOR_KEYS) if flags.get(k))


def factor_keys_from_mask(mask: int) -> list[str]:
    return [k for i, k in enumerate(FACTOR_KEYS) if mask >> i & 1]
