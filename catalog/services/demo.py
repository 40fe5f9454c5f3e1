"""The demo set: photographs written under MEDIA_ROOT and registered like any folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from catalog.demo_images import DEMO_CLASSES, build_demo_images
from catalog.importers import (
    ReleaseFormatError,
    default_release_path,
    read_classes,
)
from catalog.models import (
    Dataset,
    Image,
    ImageClass,
    Split,
)
from catalog.services.ingest import images_ingest

DEMO_SLUG = "demo"


@dataclass(slots=True)
class DemoBuildResult:
    dataset_id: int
    images: int
    files_written: int
    images_added: int
    classes_created: int
    links_set: int
    moved: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.files_written or self.images_added or self.classes_created or self.links_set or self.moved)


def _release_meta_labels() -> dict[int, str]:
    """Meta-labels of the ImageNet classes from the installed release ({} when it is absent)."""
    try:
        return {c.index: c.meta_label for c in read_classes(default_release_path())}
    except ReleaseFormatError:
        return {}


def demo_dataset_build(*, progress: bool = False) -> DemoBuildResult:
    """Write the demo photographs under MEDIA_ROOT/datasets/demo and register them; idempotent.

    Classes carry their real ImageNet index, WordNet id, name and release meta-label; images are
    registered through images_ingest (the same checks as any folder), then the variants get
    their known factors and the base crop they were derived from.
    """
    dest = Path(settings.MEDIA_ROOT) / "datasets" / DEMO_SLUG
    specs, written = build_demo_images(dest)
    metas = _release_meta_labels()
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "name": "Demo photographs",
                "description": (
                    "Real photographs shipped by scikit-image, scikit-learn and matplotlib, in five ImageNet classes, "
                    "with variants whose factors are known by construction (gold answers)."
                ),
                "root": str(dest.resolve()),
            },
        )
        moved = dataset.root != str(dest.resolve())
        if moved:
            # MEDIA_ROOT changed since the last build: the files were just rewritten at the new
            # place with the same relative paths, so the registered images stay valid there.
            dataset.root = str(dest.resolve())
            dataset.save(update_fields=["root"])
        have = set(ImageClass.objects.filter(dataset=dataset).values_list("index", flat=True))
        new = [
            ImageClass(
                dataset=dataset,
                index=c.index,
                wnid=c.wnid,
                name=c.name,
                meta_label=metas.get(c.index, "other"),
                meta_label_source="release" if metas else "demo",
            )
            for c in DEMO_CLASSES
            if c.index not in have
        ]
        ImageClass.objects.bulk_create(new)
    ingest = images_ingest(dataset_slug=DEMO_SLUG, root=dest, split=Split.VAL, progress=progress)
    with transaction.atomic():
        images = {i.relpath: i for i in Image.objects.select_for_update().filter(dataset=dataset)}
        changed = []
        for s in specs:
            img = images[s.relpath]
            known = list(s.known_factors) if s.known_factors is not None else None
            parent_id = images[s.derived_from].id if s.derived_from else None
            if img.known_factors != known or img.derived_from_id != parent_id:
                img.known_factors, img.derived_from_id = known, parent_id
                changed.append(img)
        Image.objects.bulk_update(changed, ["known_factors", "derived_from"])
    return DemoBuildResult(
        moved=moved,
        dataset_id=dataset.id,
        images=len(specs),
        files_written=written,
        images_added=ingest.added,
        classes_created=len(new),
        links_set=len(changed),
    )
