"""Importing the public ImageNet-X release (idempotent, one transaction, bulk COPY)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction

from catalog.factors import FACTOR_KEYS
from catalog.importers import (
    RELEASE_NAME,
    Release,
    ReleaseFormatError,
    read_release,
)
from catalog.models import (
    Annotation,
    AnnotationSource,
    AnnotationStatus,
    Dataset,
    Image,
    ImageClass,
    ReferencePrototype,
)
from catalog.services.annotations import annotation_versions_import
from infra.bulkcopy import bulk_insert
from infra.errors import DomainError

IMAGENET_X_SLUG = "imagenet-x"
# Rows per INSERT: large enough to amortise round trips, small enough that one statement
# stays under PostgreSQL's 65,535 bind parameters (Annotation has ~30 columns).
BULK_BATCH = 2000


class ReleaseImportError(DomainError):
    """The release cannot be imported (malformed files); nothing was written."""

    code = "release_invalid"


@dataclass(slots=True)
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(self.created.values())

    @property
    def rows_created(self) -> int:
        return sum(self.created.values())


def imagenet_x_import(*, path: Path | None = None, batch_size: int = BULK_BATCH) -> ImportResult:
    """Import the ImageNet-X release into dataset `imagenet-x`; idempotent.

    The whole release is parsed and validated before the database is touched, and everything
    is written in one transaction: a malformed copy loads nothing. Rows already present (by
    their natural keys) are left as they are, so a second run creates nothing.
    """
    started = time.perf_counter()
    try:
        release = read_release(path)
    except ReleaseFormatError as exc:
        raise ReleaseImportError(str(exc)) from exc
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two imports at once would both find nothing and collide on the unique keys; the
            # second waits here until the first commits, then finds everything present.
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('catalog.imagenet_x_import'))")
        result = _write_release(release, batch_size=batch_size)
    result.seconds = time.perf_counter() - started
    return result


def _bulk(model, objs: list, batch_size: int) -> list:
    return bulk_insert(model, objs, batch_size=batch_size)


def _write_release(release: Release, *, batch_size: int) -> ImportResult:
    """Write what is missing. The caller holds the transaction."""
    res = ImportResult()
    dataset, created = Dataset.objects.get_or_create(
        slug=IMAGENET_X_SLUG,
        defaults={
            "name": "ImageNet-X",
            "description": (
                "The public ImageNet-X release (Idrissi et al.): factor-of-variation annotations of the ImageNet-1k "
                f"val set and a train subset, {RELEASE_NAME}. Annotations only: no image files."
            ),
            "root": "",
        },
    )
    res.created["datasets"] = int(created)
    res.existing["datasets"] = int(not created)

    # Classes, keyed by index. An existing class keeps its meta-label (a maintainer may have edited it).
    class_ids = dict(ImageClass.objects.filter(dataset=dataset).values_list("index", "id"))
    new_classes = [
        ImageClass(
            dataset=dataset,
            index=c.index,
            wnid=c.wnid,
            name=c.name,
            meta_label=c.meta_label,
            meta_label_source="release",
        )
        for c in release.classes
        if c.index not in class_ids
    ]
    for obj in _bulk(ImageClass, new_classes, batch_size):
        class_ids[obj.index] = obj.id
    res.created["classes"], res.existing["classes"] = len(new_classes), len(release.classes) - len(new_classes)

    # Images: every annotated file, plus the prototype files the annotation files leave out.
    image_ids = dict(Image.objects.filter(dataset=dataset).values_list("file_name", "id"))
    wanted: list[tuple[str, str, int]] = [
        (r.file_name, split, r.class_index) for split, recs in release.records.items() for r in recs
    ]
    annotated = {w[0] for w in wanted}
    wanted += [(name, "val", release.val_labels[name]) for name in release.prototypes if name not in annotated]
    new_images = [
        Image(dataset=dataset, split=split, image_class_id=class_ids[cls], file_name=name, relpath="", readable=None)
        for name, split, cls in wanted
        if name not in image_ids
    ]
    for obj in _bulk(Image, new_images, batch_size):
        image_ids[obj.file_name] = obj.id
    res.created["images"], res.existing["images"] = len(new_images), len(wanted) - len(new_images)

    # Imported annotations (one per image and release) and their version 1.
    have = set(
        Annotation.objects.filter(
            image__dataset=dataset, source=AnnotationSource.IMPORTED, source_release=RELEASE_NAME
        ).values_list("image_id", flat=True)
    )
    new_annotations: list[Annotation] = []
    for recs in release.records.values():
        for r in recs:
            image_id = image_ids[r.file_name]
            if image_id in have:
                continue
            new_annotations.append(
                Annotation(
                    image_id=image_id,
                    source=AnnotationSource.IMPORTED,
                    annotator=None,
                    source_release=RELEASE_NAME,
                    status=AnnotationStatus.ACCEPTED,
                    justification=r.justification,
                    one_word=r.one_word,
                    reference_top_factor=r.top_factor,
                    version=1,
                    **dict(zip(FACTOR_KEYS, r.flags, strict=True)),
                )
            )
    _bulk(Annotation, new_annotations, batch_size)
    annotation_versions_import(new_annotations, batch_size=batch_size)
    res.created["annotations"] = len(new_annotations)
    res.existing["annotations"] = release.n_records - len(new_annotations)

    # The published prototypes, kept as a reference (not as a PrototypeRun of ours).
    have_protos = set(
        ReferencePrototype.objects.filter(dataset=dataset, source_release=RELEASE_NAME).values_list(
            "file_name", flat=True
        )
    )
    new_protos = [
        ReferencePrototype(
            dataset=dataset,
            image_class_id=class_ids[release.val_labels[name]],
            file_name=name,
            position=pos,
            source_release=RELEASE_NAME,
        )
        for pos, name in enumerate(release.prototypes, 1)
        if name not in have_protos
    ]
    _bulk(ReferencePrototype, new_protos, batch_size)
    res.created["prototypes"], res.existing["prototypes"] = len(new_protos), len(release.prototypes) - len(new_protos)
    return res
