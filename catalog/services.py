"""Writes of the catalogue: importing the public ImageNet-X release, registering image folders.

Functions are named `<entity>_<verb>`, keyword-only, typed and transactional.
"""

from __future__ import annotations

import csv
import enum
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb
from tqdm import tqdm

from catalog.demo_images import DEMO_CLASSES, build_demo_images
from catalog.errors import DomainError
from catalog.factors import FACTOR_KEYS
from catalog.imagecheck import FileCheck, check_image
from catalog.importers import (
    RELEASE_NAME,
    Release,
    ReleaseFormatError,
    default_release_path,
    read_classes,
    read_release,
)
from catalog.models import (
    Annotation,
    AnnotationSource,
    AnnotationStatus,
    AnnotationVersion,
    Dataset,
    Image,
    ImageClass,
    ReferencePrototype,
    Split,
)
from catalog.roles import Role

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
    """Insert `objs` and set their primary keys: COPY on PostgreSQL, bulk_create elsewhere."""
    if not objs:
        return []
    if connection.vendor == "postgresql":
        return _copy_insert(model, objs)
    # bulk_create sets primary keys on SQLite >= 3.35 (RETURNING).
    return model.objects.bulk_create(objs, batch_size=batch_size)


def _copy_insert(model, objs: list) -> list:
    """PostgreSQL COPY of every concrete column, ids drawn from the table's sequence first.

    COPY cannot return the generated ids, so they are taken from the identity sequence before
    the rows are sent (nextval never hands the same number twice, even to concurrent sessions)
    and written explicitly. For the 184,000 rows of the ImageNet-X release this took the client
    CPU from ~14 s (bulk_create INSERTs) to ~9 s: no SQL is compiled and bound per row.
    """
    meta = model._meta
    fields = list(meta.concrete_fields)
    now = timezone.now()

    def getter(f):
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            return lambda o: now
        if isinstance(f, models.JSONField):
            return lambda o, a=f.attname: None if getattr(o, a) is None else Jsonb(getattr(o, a))
        return lambda o, a=f.attname: _plain(getattr(o, a))

    getters = [getter(f) for f in fields]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cur.fetchall(), strict=True):
            obj.pk = pk
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with cur.cursor.copy(f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row([g(obj) for g in getters])
    for obj in objs:
        for f in fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                setattr(obj, f.attname, now)
        obj._state.adding, obj._state.db = False, connection.alias
    return objs


def _plain(value):
    # psycopg dumps an Enum by its *name*; Django's TextChoices members must go in as their value.
    return value.value if isinstance(value, enum.Enum) else value


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
    _bulk(
        AnnotationVersion,
        [
            AnnotationVersion(annotation_id=a.id, version=1, data=a.snapshot(), author=None, reason="import")
            for a in new_annotations
        ],
        batch_size,
    )
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


# --- Registering a folder of images -----------------------------------------------------
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


# --- The demo set -------------------------------------------------------------------------
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


# Demo accounts (cross-app contract): password "demo-<username>"; the maintainer is also a reviewer.
DEMO_USERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("annotator", (Role.ANNOTATOR,)),
    ("annotator2", (Role.ANNOTATOR,)),
    ("annotator3", (Role.ANNOTATOR,)),
    ("reviewer", (Role.REVIEWER,)),
    ("maintainer", (Role.MAINTAINER, Role.REVIEWER)),
    ("researcher", (Role.RESEARCHER,)),
)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    username: str
    password: str
    roles: tuple[str, ...]
    created: bool


@transaction.atomic
def demo_users_ensure() -> list[DemoAccount]:
    """Create the demo accounts that are missing; existing ones keep their password.

    The maintainer is staff with every model permission so that it can use the Django admin
    (not a superuser: a superuser holds every role, annotator included).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    user_model = get_user_model()
    accounts = []
    for username, roles in DEMO_USERS:
        password = f"demo-{username}"
        user = user_model.objects.filter(username=username).first()
        created = user is None
        if created:
            user = user_model.objects.create_user(username=username, password=password)
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)  # no-op when already a member
        if Role.MAINTAINER in roles and created:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            user.user_permissions.set(Permission.objects.all())
        accounts.append(DemoAccount(username, password, roles, created))
    return accounts
