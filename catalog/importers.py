"""Readers for the public ImageNet-X release files (pure Python: no Django imports).

The release (PyPI package `imagenet-x` 0.0.7, folder imagenet_x/annotations/) ships:
- imagenet_labels.txt: line i = "wnid,name" of class i (1,000 lines);
- imagenet_1k_classes_to_100_metaclasses.csv: row i = class i; its `name` column is a
  WordNet ancestor, mapped to the 17 meta-labels exactly as imagenet_x.utils.to_metaclass
  does (a name outside the list becomes "other");
- filename_label.csv: `file_name,label` for the 50,000 ImageNet val images;
- imagenet_x_{val,train}_{multi,top}_factor.jsonl: one annotation per line, keys in
  RELEASE_KEY_ORDER; the multi-factor file holds every factor the annotator selected, the
  top-factor file the single factor the authors kept (a few lines keep none);
- prototypical_paths.csv: the 3,000 prototype file names (3 per class, val images).

Every reader validates as it goes and raises ReleaseFormatError naming the file and the line,
so that a malformed or truncated copy is refused before anything touches the database.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from catalog.answers import JUSTIFICATION_MAX, ONE_WORD_STORED_MAX
from catalog.factors import FACTOR_KEYS, META_LABELS, RELEASE_KEY_ORDER

RELEASE_NAME = "imagenet-x-0.0.7"
SPLITS = ("val", "train")
_EXPECTED_KEYS = frozenset(RELEASE_KEY_ORDER)


class ReleaseFormatError(ValueError):
    """The release folder is incomplete or a file in it is malformed (message names file and line)."""


@dataclass(frozen=True, slots=True)
class ReleaseClass:
    index: int
    wnid: str
    name: str
    meta_label: str


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    file_name: str
    class_index: int
    flags: tuple[bool, ...]  # in FACTOR_KEYS order
    justification: str
    one_word: str
    top_factor: str  # "" when the release keeps no top factor for the image


@dataclass(slots=True)
class Release:
    path: Path
    classes: list[ReleaseClass]
    records: dict[str, list[ReleaseRecord]]  # split -> records, file order
    val_labels: dict[str, int]  # filename_label.csv
    prototypes: list[str]  # file names, file order
    notes: list[str] = field(default_factory=list)

    @property
    def n_records(self) -> int:
        return sum(len(r) for r in self.records.values())


def default_release_path() -> Path:
    """The annotations folder of the installed `imagenet_x` package."""
    try:
        import imagenet_x
    except ImportError as exc:  # an optional extra: say how to get it
        raise ReleaseFormatError(
            "The imagenet_x package is not installed (pip install imagenet-x==0.0.7), or pass --path."
        ) from exc
    return Path(imagenet_x.__file__).resolve().parent / "annotations"


def _require(path: Path, name: str) -> Path:
    p = path / name
    if not p.is_file():
        raise ReleaseFormatError(f"{p}: file missing from the release folder")
    return p


def read_classes(path: Path) -> list[ReleaseClass]:
    labels_file = _require(path, "imagenet_labels.txt")
    meta_file = _require(path, "imagenet_1k_classes_to_100_metaclasses.csv")
    labels: list[tuple[str, str]] = []
    with labels_file.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            wnid, sep, name = line.rstrip("\r\n").partition(",")
            if not sep or not wnid.strip() or not name.strip():
                raise ReleaseFormatError(f"{labels_file.name} line {lineno}: expected 'wnid,name', got {line!r}")
            labels.append((wnid.strip(), name.strip()))
    metas: list[str] = []
    known = set(META_LABELS)
    with meta_file.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise ReleaseFormatError(f"{meta_file.name} line 1: header has no 'name' column")
        for row in reader:
            name = (row.get("name") or "").strip()
            if not name:
                raise ReleaseFormatError(f"{meta_file.name} line {reader.line_num}: empty 'name'")
            # Same rule as imagenet_x.utils.to_metaclass: names outside the 17 meta-labels -> "other".
            metas.append(name if name in known else "other")
    if len(metas) != len(labels):
        raise ReleaseFormatError(
            f"{meta_file.name} has {len(metas)} classes but {labels_file.name} has {len(labels)} (truncated file?)"
        )
    return [ReleaseClass(i, wnid, name, meta) for i, ((wnid, name), meta) in enumerate(zip(labels, metas, strict=True))]


def read_val_labels(path: Path, n_classes: int) -> dict[str, int]:
    p = _require(path, "filename_label.csv")
    out: dict[str, int] = {}
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["file_name", "label"]:
            raise ReleaseFormatError(f"{p.name} line 1: expected header 'file_name,label', got {header!r}")
        for row in reader:
            line = reader.line_num
            if len(row) != 2 or not row[0]:
                raise ReleaseFormatError(f"{p.name} line {line}: expected 'file_name,label', got {row!r}")
            try:
                label = int(row[1])
            except ValueError:
                raise ReleaseFormatError(f"{p.name} line {line}: label {row[1]!r} is not an integer")
            if not 0 <= label < n_classes:
                raise ReleaseFormatError(f"{p.name} line {line}: label {label} is not a class index")
            out[row[0]] = label
    return out


def read_prototypes(path: Path, val_labels: dict[str, int]) -> list[str]:
    p = _require(path, "prototypical_paths.csv")
    names: list[str] = []
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["file_name"]:
            raise ReleaseFormatError(f"{p.name} line 1: expected header 'file_name', got {header!r}")
        for row in reader:
            if len(row) != 1 or not row[0]:
                raise ReleaseFormatError(f"{p.name} line {reader.line_num}: expected one file name, got {row!r}")
            if row[0] not in val_labels:
                raise ReleaseFormatError(
                    f"{p.name} line {reader.line_num}: {row[0]} is not in filename_label.csv (its class is unknown)"
                )
            names.append(row[0])
    return names


def _parse_line(p: Path, lineno: int, raw: bytes, n_classes: int) -> dict:
    where = f"{p.name} line {lineno}"
    if not raw.strip():
        raise ReleaseFormatError(f"{where}: empty line")
    try:
        obj = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError (a cut multi-byte character)
        hint = " (the file looks truncated)" if not raw.endswith(b"\n") else ""
        raise ReleaseFormatError(f"{where}: not valid JSON{hint}: {exc}") from None
    if not isinstance(obj, dict):
        raise ReleaseFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    keys = obj.keys()
    if keys != _EXPECTED_KEYS:
        missing = sorted(_EXPECTED_KEYS - keys)
        extra = sorted(keys - _EXPECTED_KEYS)
        raise ReleaseFormatError(
            f"{where}: keys differ from the release format (missing {missing}, unexpected {extra})"
        )
    if not isinstance(obj["file_name"], str) or not obj["file_name"]:
        raise ReleaseFormatError(f"{where}: file_name must be a non-empty string")
    cls = obj["class"]
    if type(cls) is not int or not 0 <= cls < n_classes:
        raise ReleaseFormatError(f"{where}: class {cls!r} is not a class index 0-{n_classes - 1}")
    for k in FACTOR_KEYS:
        if obj[k] not in (0, 1) or type(obj[k]) not in (int, bool):
            raise ReleaseFormatError(f"{where}: factor {k} must be 0 or 1, got {obj[k]!r}")
    for k in ("justification", "one_word"):
        if obj[k] is not None and not isinstance(obj[k], str):
            raise ReleaseFormatError(f"{where}: {k} must be a string or null")
    # The release is imported as published, not held to the annotator form's limits
    # (catalog.answers): in imagenet-x 0.0.7, 87 one_word summaries are longer than ONE_WORD_MAX
    # (up to 77 characters), 2,366 have more than ONE_WORD_MAX_WORDS words, 49 one_word and 19
    # justifications are empty, and 8 records tick no factor without "nothing differs"
    # (the release has no such field). Refusing them would drop published records; rewriting
    # them would no longer be the release. Only what the columns must hold is checked, so a
    # damaged copy is refused here instead of failing in the database.
    if len(obj["justification"] or "") > JUSTIFICATION_MAX:
        raise ReleaseFormatError(f"{where}: justification longer than {JUSTIFICATION_MAX} characters")
    if len(obj["one_word"] or "") > ONE_WORD_STORED_MAX:
        raise ReleaseFormatError(f"{where}: one_word longer than {ONE_WORD_STORED_MAX} characters")
    return obj


def read_split(path: Path, split: str, n_classes: int) -> list[ReleaseRecord]:
    """Read the multi-factor file of `split` and take the top factor from its twin file.

    Both files list the same images in the same order with the same text; a mismatch means a
    damaged copy and is refused.
    """
    multi_path = _require(path, f"imagenet_x_{split}_multi_factor.jsonl")
    top_path = _require(path, f"imagenet_x_{split}_top_factor.jsonl")
    records: list[ReleaseRecord] = []
    seen: set[str] = set()
    with multi_path.open("rb") as fm, top_path.open("rb") as ft:
        lineno = 0
        for lineno, raw_multi in enumerate(fm, 1):  # noqa: B007 - lineno is read after the loop
            m = _parse_line(multi_path, lineno, raw_multi, n_classes)
            raw_top = ft.readline()
            if not raw_top:
                raise ReleaseFormatError(
                    f"{top_path.name} ends at line {lineno - 1} but {multi_path.name} goes on (truncated file?)"
                )
            t = _parse_line(top_path, lineno, raw_top, n_classes)
            if t["file_name"] != m["file_name"] or t["class"] != m["class"]:
                raise ReleaseFormatError(
                    f"{top_path.name} line {lineno}: {t['file_name']} does not match "
                    f"{multi_path.name} line {lineno} ({m['file_name']})"
                )
            top = [k for k in FACTOR_KEYS if t[k]]
            if len(top) > 1:
                raise ReleaseFormatError(
                    f"{top_path.name} line {lineno}: {len(top)} top factors set ({top}), expected one"
                )
            if m["file_name"] in seen:
                raise ReleaseFormatError(f"{multi_path.name} line {lineno}: {m['file_name']} appears twice")
            seen.add(m["file_name"])
            records.append(
                ReleaseRecord(
                    file_name=m["file_name"],
                    class_index=m["class"],
                    flags=tuple(bool(m[k]) for k in FACTOR_KEYS),
                    justification=m["justification"] or "",
                    one_word=m["one_word"] or "",
                    top_factor=top[0] if top else "",
                )
            )
        if ft.readline():
            raise ReleaseFormatError(
                f"{multi_path.name} ends at line {lineno} but {top_path.name} goes on (truncated file?)"
            )
    if not records:
        raise ReleaseFormatError(f"{multi_path.name}: no annotation in the file")
    return records


def read_release(path: Path | None = None) -> Release:
    """Parse and validate the whole release folder; raises ReleaseFormatError on the first problem."""
    path = Path(path) if path else default_release_path()
    if not path.is_dir():
        raise ReleaseFormatError(f"{path}: not a folder")
    classes = read_classes(path)
    val_labels = read_val_labels(path, len(classes))
    prototypes = read_prototypes(path, val_labels)
    records = {split: read_split(path, split, len(classes)) for split in SPLITS}
    val_names = {r.file_name for r in records["val"]}
    train_names = {r.file_name for r in records["train"]}
    both = val_names & train_names
    if both:
        raise ReleaseFormatError(f"{len(both)} images are annotated in both val and train, e.g. {sorted(both)[0]}")
    return Release(path=path, classes=classes, records=records, val_labels=val_labels, prototypes=prototypes)
