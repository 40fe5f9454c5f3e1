"""Writes of classes' meta-labels: a maintainer's correction, or derivation from WordNet."""

from __future__ import annotations

from django.db import transaction

from catalog.factors import META_LABELS
from catalog.models import ImageClass
from curation.metalabels import derive_meta_labels
from infra.errors import DomainError, NotFound


def image_class_meta_label_set(*, image_class_id: int, meta_label: str, user=None) -> ImageClass:
    """A maintainer corrects a class's meta-label (later curation runs use it)."""
    if meta_label not in META_LABELS:
        raise DomainError(f"meta_label must be one of {list(META_LABELS)}, not {meta_label!r}.", field="meta_label")
    with transaction.atomic():
        cls = ImageClass.objects.select_for_update().filter(pk=image_class_id).first()
        if cls is None:
            raise NotFound(f"Class {image_class_id} does not exist.")
        cls.meta_label = meta_label
        cls.meta_label_source = "maintainer"
        cls.save(update_fields=["meta_label", "meta_label_source"])
    return cls


def image_classes_meta_labels_derive(*, dataset_slug: str) -> int | None:
    """Set meta-labels from WordNet hypernyms for classes not corrected by a maintainer.

    Returns the number of classes updated, or None when WordNet data is not installed.
    """
    classes = list(
        ImageClass.objects.filter(dataset__slug=dataset_slug).exclude(wnid="").exclude(meta_label_source="maintainer")
    )
    derived = derive_meta_labels([c.wnid for c in classes])
    if derived is None:
        return None
    changed = [c for c in classes if derived[c.wnid] != c.meta_label]
    for c in changed:
        c.meta_label, c.meta_label_source = derived[c.wnid], "wordnet"
    ImageClass.objects.bulk_update(changed, ["meta_label", "meta_label_source"])
    return len(changed)
