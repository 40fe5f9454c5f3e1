"""Registering a folder of images (ImageNet-style class folders or a flat folder with a labels CSV)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from tqdm import tqdm

from catalog.imagecheck import FileCheck, check_image
from catalog.models import (
    Dataset,
    Image,
    ImageClass,
    Split,
)
from infra.errors import DomainError


class IngestError(DomainError):
    """The folder or its labels cannot be registered as given; nothing was written."""

    code = "ingest_invalid"


@dataclass(slots=True)
class IngestResult:
    dataset_id: int
    added: int = 0
    readable: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    already_registered: int = 0
    ignored: list[str] = field(default_factory=list)  # files with no label (not registered)
    created_ids: dict[str, int] = field(default_factory=dict)  # relpath -> Image id
    classes_created: int = 0
    attached: int = 0  # files attached to images that existed without a file (counted in `added`)
    class_mismatches: list[str] = field(default_factory=list)  # attached files whose label differs


_WNID = re.compile(r"^n\d{8}$")


def _is_hidden(p: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _list_image_folder(root: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """ImageFolder layout: root/<class>/<file> (sub-folders of a class folder count too)."""
    entries, ignored = [], []
    for child in sorted(root.iterdir()):
        if _is_hidden(child, root):
            continue
        if child.is_file():
            ignored.append(child.name)  # a file outside any class folder has no label
            continue
        for f in sorted(child.rglob("*")):
            if f.is_file() and not _is_hidden(f, root):
                entries.append((f.relative_to(root).as_posix(), child.name))
    return entries, ignored


def _list_flat_with_csv(root: Path, labels_csv: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Flat folder + `file_name,label` CSV (how ImageNet val is shipped)."""
    if not labels_csv.is_file():
        raise IngestError(f"{labels_csv}: labels file not found", field="labels")
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    with labels_csv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file_name", "label"} <= set(reader.fieldnames):
            raise IngestError(
                f"{labels_csv.name} line 1: the header must name the columns file_name,label", field="labels"
            )
        for row in reader:
            name, label = (row["file_name"] or "").strip(), (row["label"] or "").strip()
            if not name or not label:
                raise IngestError(f"{labels_csv.name} line {reader.line_num}: empty file_name or label", field="labels")
            if name in seen:
                raise IngestError(f"{labels_csv.name} line {reader.line_num}: {name} is listed twice", field="labels")
            seen.add(name)
            entries.append((name, label))
    ignored = sorted(
        p.name
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name not in seen and p.resolve() != labels_csv.resolve()
    )
    return entries, ignored


def _resolve_classes(dataset: Dataset, labels: set[str]) -> tuple[dict[str, int], int]:
    """Map each label to an ImageClass id of `dataset`.

    A dataset without classes gets one per distinct label, numbered like torchvision's
    ImageFolder (sorted names), or by the label itself when every label is an integer.
    Otherwise a label must match a class's WordNet id, name or index; unknown labels are refused.
    """
    classes = list(ImageClass.objects.filter(dataset=dataset))
    if not classes:
        ordered = sorted(labels)
        numeric = all(lbl.isdigit() for lbl in ordered)
        new = [
            ImageClass(
                dataset=dataset,
                index=int(lbl) if numeric else i,
                name=lbl,
                wnid=lbl if _WNID.match(lbl) else "",
                meta_label="other",
                meta_label_source="ingest",
            )
            for i, lbl in enumerate(ordered)
        ]
        ImageClass.objects.bulk_create(new)
        classes, created = list(ImageClass.objects.filter(dataset=dataset)), len(new)
    else:
        created = 0
    lookup: dict[str, int] = {}
    for c in classes:  # the most specific key wins: index < name < wnid
        lookup.setdefault(str(c.index), c.id)
    for c in classes:
        lookup[c.name] = c.id
    for c in classes:
        if c.wnid:
            lookup[c.wnid] = c.id
    unknown = sorted(labels - lookup.keys())
    if unknown:
        raise IngestError(
            f"{len(unknown)} label(s) match no class of dataset '{dataset.slug}' (by WordNet id, name or index): "
            + ", ".join(unknown[:10]),
            field="labels",
            details={"unknown_labels": unknown[:100]},
        )
    return lookup, created


def images_ingest(
    *,
    dataset_slug: str,
    root: Path,
    labels_csv: Path | None = None,
    split: str = Split.VAL,
    dataset_name: str | None = None,
    progress: bool = False,
    batch_size: int = 200,
) -> IngestResult:
    """Register the files under `root` as images of dataset `dataset_slug`; re-running adds only new files.

    Every file is decoded fully with Pillow (catalog.imagecheck); an unreadable one is recorded
    with its reason and never stops the run. Files are committed batch by batch, so an
    interrupted run keeps what it registered and the next run picks up the rest.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise IngestError(f"{root}: not a folder", field="root")
    if split not in Split.values:
        raise IngestError(f"split {split!r} is not one of {', '.join(Split.values)}", field="split")
    if labels_csv is not None:
        entries, ignored = _list_flat_with_csv(root, Path(labels_csv))
    else:
        entries, ignored = _list_image_folder(root)

    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(
            slug=dataset_slug, defaults={"name": dataset_name or dataset_slug, "root": str(root)}
        )
        if dataset.root and Path(dataset.root).resolve() != root:
            raise IngestError(
                f"dataset '{dataset_slug}' keeps its files under {dataset.root}; ingest from that folder",
                field="root",
                code="conflict",
                status=409,
            )
        if not dataset.root:
            dataset.root = str(root)
            dataset.save(update_fields=["root"])
        label_to_class, classes_created = _resolve_classes(dataset, {lbl for _, lbl in entries})

    result = IngestResult(dataset_id=dataset.id, ignored=ignored, classes_created=classes_created)
    existing = list(Image.objects.filter(dataset=dataset).values_list("id", "file_name", "relpath", "image_class_id"))
    registered = {rel for _, _, rel, _ in existing if rel}
    taken_names = {name for _, name, _, _ in existing}
    # Rows that exist without a file (e.g. imported ImageNet-X records): a file of the same
    # name gets attached to them instead of becoming a second image.
    fileless = {name: (pk, cls) for pk, name, rel, cls in existing if not rel}
    todo = [(rel, lbl) for rel, lbl in entries if rel not in registered]
    result.already_registered = len(entries) - len(todo)

    batch: list[Image] = []
    attach: list[Image] = []
    fields = ["relpath", "width", "height", "sha256", "readable", "unreadable_reason"]

    def flush() -> None:
        with transaction.atomic():
            for obj in Image.objects.bulk_create(batch):
                result.created_ids[obj.relpath] = obj.id
            Image.objects.bulk_update(attach, fields)
        batch.clear()
        attach.clear()

    for rel, lbl in tqdm(todo, desc=f"ingest {dataset_slug}", unit="file", disable=not progress):
        path = root / rel
        check = (
            check_image(path)
            if path.exists()
            else FileCheck(False, "listed but the file does not exist", None, None, "")
        )
        base = Path(rel).name
        values = {
            "relpath": rel,
            "width": check.width,
            "height": check.height,
            "sha256": check.sha256,
            "readable": check.readable,
            "unreadable_reason": check.reason,
        }
        if base in fileless:
            pk, class_id = fileless.pop(base)
            attach.append(Image(id=pk, **values))
            result.attached += 1
            if class_id != label_to_class[lbl]:
                result.class_mismatches.append(rel)  # the catalogue's class is kept
        else:
            # ImageNet names its files uniquely; elsewhere two class folders may share a name.
            file_name = base if base not in taken_names else rel
            taken_names.add(file_name)
            batch.append(
                Image(dataset=dataset, split=split, image_class_id=label_to_class[lbl], file_name=file_name, **values)
            )
        result.added += 1
        if check.readable:
            result.readable += 1
        else:
            result.unreadable.append((rel, check.reason))
        if len(batch) + len(attach) >= batch_size:
            flush()
    if batch or attach:
        flush()
    return result
