"""Reads for the prototypes the annotation form shows.

The form, the review view and the exports read prototypes only through these functions.
"""

from __future__ import annotations

from catalog.models import Image, ImageClass


def current_run(*, dataset_id: int):
    """The dataset's current PrototypeRun, or None. (Filled by the prototype service.)"""
    return None


def prototypes_for_class(image_class: ImageClass, *, k: int = 3) -> tuple[object | None, list[Image]]:
    """(run, the k prototype images of the class) for the form.

    Until a prototype run exists, any k readable images of the class stand in (run is None).
    """
    images = list(
        Image.objects.filter(image_class=image_class, readable=True).exclude(relpath="").order_by("file_name")[:k]
    )
    return None, images
