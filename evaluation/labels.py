"""The labels an evaluation is computed against, as plain arrays. No Django imports.

A `LabelSet` is one row per annotated image: its class, its 16 factor flags (columns in
`catalog.factors.FACTOR_KEYS` order), its meta-label, whether it is a published prototype and
its ReaL label set (ImageNet val only). It is read from files in the ImageNet-X layout
(`imagenet_x_{split}_{top,multi}_factor.jsonl`, `prototypical_paths.csv`, a class -> meta-label
mapping): the toolkit's own copies in the `imagenet_x` package, or a published release's files.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from catalog.factors import FACTOR_KEYS, META_LABELS

N_FACTORS = len(FACTOR_KEYS)
OTHER = META_LABELS.index("other")
META_INDEX = {m: i for i, m in enumerate(META_LABELS)}


def package_annotation_dir() -> Path:
    """Where the `imagenet_x` package (the toolkit, a dependency) keeps the ImageNet-X files."""
    return Path(str(files("imagenet_x") / "annotations"))


@dataclass
class LabelSet:
    file_names: np.ndarray  # str, one per image
    classes: np.ndarray  # int32
    factors: np.ndarray  # bool [n, 16], FACTOR_KEYS order
    class_meta: np.ndarray  # int8 [n_classes]: META_LABELS index of each class
    is_prototype: np.ndarray  # bool [n]
    # ReaL labels (Beyer et al. 2020) as sorted keys image_row * n_classes + label; None = none known.
    real_keys: np.ndarray | None = None
    real_known: np.ndarray | None = None  # bool [n]: the image has a non-empty ReaL label set
    justification: np.ndarray | None = None  # object [n]
    one_word: np.ndarray | None = None
    source: str = ""
    _order: pa.Array | None = field(default=None, repr=False)
    _real_bits: np.ndarray | None = field(default=None, repr=False)
    _last_lookup: tuple | None = field(default=None, repr=False)
    _design: tuple | None = field(default=None, repr=False)
    _design_small: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.file_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_meta)

    @property
    def meta(self) -> np.ndarray:
        return self.class_meta[self.classes]

    def subset(self, keep: np.ndarray) -> LabelSet:
        """The images where `keep` is true (e.g. prototypes filtered out), ReaL keys re-indexed."""
        rows = np.flatnonzero(keep)
        real_keys = real_known = None
        if self.real_keys is not None:
            img, lab = np.divmod(self.real_keys, self.n_classes)
            new_row = np.full(self.n, -1, dtype=np.int64)
            new_row[rows] = np.arange(len(rows))
            ok = new_row[img] >= 0
            real_keys = np.sort(new_row[img[ok]] * self.n_classes + lab[ok])
            real_known = self.real_known[rows]
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return LabelSet(
            file_names=self.file_names[rows],
            classes=self.classes[rows],
            factors=self.factors[rows],
            class_meta=self.class_meta,
            is_prototype=self.is_prototype[rows],
            real_keys=real_keys,
            real_known=real_known,
            justification=pick(self.justification),
            one_word=pick(self.one_word),
            source=self.source,
        )

    def index_of(self, names: np.ndarray | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Row of each name in this label set, -1 where it has none (Arrow's hash lookup, in C++)."""
        if self._order is None:
            self._order = pa.array(self.file_names.tolist(), type=pa.string())
        if isinstance(names, np.ndarray):
            names = pa.array(names.tolist(), type=pa.string())
        if isinstance(names, pa.ChunkedArray):
            names = names.combine_chunks()
        # Files of a batch usually share one order: equal to the last names looked up -> same rows.
        last = self._last_lookup
        if last is not None and len(last[0]) == len(names) and pc.all(pc.equal(names, last[0])).as_py():
            return last[1]
        idx = pc.index_in(names, value_set=self._order).fill_null(-1)
        rows = np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)
        rows.flags.writeable = False
        self._last_lookup = (names, rows)
        return rows

    def design(self) -> tuple[np.ndarray, object]:
        """Cached right-hand sides of every count: G = [factors | meta-label x factor | meta-label]
        (float32 [n, 16 + 17*16 + 17]) and the class one-hot (sparse CSR [n, n_classes])."""
        if self._design is None:
            from scipy import sparse

            n, nf, nm = self.n, N_FACTORS, len(META_LABELS)
            meta = self.meta
            onehot = np.zeros((n, nm), dtype=np.float32)
            onehot[np.arange(n), meta] = 1
            mf = (onehot[:, :, None] * self.factors[:, None, :]).reshape(n, nm * nf)
            g = np.ascontiguousarray(np.concatenate([self.factors.astype(np.float32), mf, onehot], axis=1))
            cls = sparse.csr_matrix(
                (np.ones(n, dtype=np.float32), (np.arange(n), self.classes)), shape=(n, self.n_classes)
            )
            self._design = (g, cls)
        return self._design

    def design_small(self) -> np.ndarray:
        """The factor columns of `design()` only (for the kinds without a meta-label breakdown)."""
        g, _ = self.design()
        if self._design_small is None:
            self._design_small = np.ascontiguousarray(g[:, :N_FACTORS])
        return self._design_small

    def real_bits(self) -> np.ndarray:
        """ReaL label sets as a bit table [n, ceil(n_classes / 8)] (uint8), for a fast gather."""
        if self._real_bits is None:
            img, lab = np.divmod(self.real_keys, self.n_classes)
            dense = np.zeros((self.n, self.n_classes), dtype=bool)
            dense[img, lab] = True
            self._real_bits = np.packbits(dense, axis=1)
        return self._real_bits


def read_jsonl_labels(data: bytes) -> dict[str, np.ndarray]:
    """Columns of an ImageNet-X `*_factor.jsonl` file (pyarrow's reader; ~0.2 s for 48k rows)."""
    table = pajson.read_json(io.BytesIO(data), read_options=pajson.ReadOptions(block_size=1 << 24))
    out = {
        "file_name": np.asarray(table.column("file_name").to_pylist(), dtype=object).astype(str),
        "class": table.column("class").to_numpy().astype(np.int32),
        "factors": np.stack([table.column(k).to_numpy(zero_copy_only=False).astype(bool) for k in FACTOR_KEYS], axis=1),
    }
    for text in ("justification", "one_word"):
        if text in table.column_names:
            col = table.column(text).cast(pa.string()).fill_null("")
            out[text] = np.asarray(col.to_pylist(), dtype=object)
    return out


def read_prototype_names(data: bytes) -> set[str]:
    rows = data.decode("utf-8").splitlines()
    return {r.strip() for r in rows[1:] if r.strip()}


def toolkit_class_meta(csv_bytes: bytes) -> np.ndarray:
    """The toolkit's class -> meta-label rule (`imagenet_x.utils.to_metaclass`): the `name` column of
    `imagenet_1k_classes_to_100_metaclasses.csv` where it is one of the 17, else `other`."""
    reader = csv.DictReader(io.StringIO(csv_bytes.decode("utf-8")))
    return np.array([META_INDEX.get(row["name"], OTHER) for row in reader], dtype=np.int8)


def release_class_meta(csv_bytes: bytes) -> np.ndarray:
    """A release's `classes.csv` (class index, wnid, name, meta-label) -> meta-label per index."""
    reader = csv.DictReader(io.StringIO(csv_bytes.decode("utf-8")))
    rows = [(int(r["class"] if "class" in r else r["index"]), r.get("meta_label") or "other") for r in reader]
    out = np.full(max(i for i, _ in rows) + 1, OTHER, dtype=np.int8)
    for i, m in rows:
        out[i] = META_INDEX.get(m, OTHER)
    return out


def imagenet_real_keys(file_names: np.ndarray, real_json: bytes, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """ReaL label sets of ImageNet val images (`ILSVRC2012_val_%08d.JPEG`, 1-based) as sorted keys."""
    sets = json.loads(real_json)
    keys: list[int] = []
    known = np.zeros(len(file_names), dtype=bool)
    for row, name in enumerate(file_names):
        if not name.startswith("ILSVRC2012_val_"):
            continue
        try:
            i = int(name[15:23]) - 1
        except ValueError:
            continue
        if 0 <= i < len(sets) and sets[i]:
            known[row] = True
            keys.extend(row * n_classes + int(lab) for lab in sets[i])
    return np.unique(np.asarray(keys, dtype=np.int64)), known


def build_labels(
    *,
    jsonl: bytes,
    class_meta: np.ndarray,
    prototypes: set[str],
    real_json: bytes | None,
    source: str,
) -> LabelSet:
    cols = read_jsonl_labels(jsonl)
    names = cols["file_name"]
    n_classes = max(len(class_meta), int(cols["class"].max()) + 1 if len(names) else 0)
    if len(class_meta) < n_classes:
        class_meta = np.concatenate([class_meta, np.full(n_classes - len(class_meta), OTHER, np.int8)])
    real_keys = real_known = None
    if real_json is not None:
        real_keys, real_known = imagenet_real_keys(names, real_json, n_classes)
    return LabelSet(
        file_names=names,
        classes=cols["class"],
        factors=cols["factors"],
        class_meta=class_meta,
        is_prototype=np.isin(names, np.array(sorted(prototypes), dtype=names.dtype if len(names) else str)),
        real_keys=real_keys,
        real_known=real_known,
        justification=cols.get("justification"),
        one_word=cols.get("one_word"),
        source=source,
    )


@lru_cache(maxsize=8)
def toolkit_labels(which_factor: str = "top", partition: str = "val") -> LabelSet:
    """The labels the toolkit uses (`imagenet_x.load_annotations`), prototypes not yet filtered."""
    if which_factor not in ("top", "multi") or partition not in ("train", "val"):
        raise ValueError("which_factor is top or multi; partition is train or val")
    d = package_annotation_dir()
    return build_labels(
        jsonl=(d / f"imagenet_x_{partition}_{which_factor}_factor.jsonl").read_bytes(),
        class_meta=toolkit_class_meta((d / "imagenet_1k_classes_to_100_metaclasses.csv").read_bytes()),
        prototypes=read_prototype_names((d / "prototypical_paths.csv").read_bytes()),
        real_json=(d / "imagenet_real_labels.jsonl").read_bytes() if partition == "val" else None,
        source=f"imagenet_x package, {partition} {which_factor} factor",
    )


def toolkit_real_json() -> bytes:
    return (package_annotation_dir() / "imagenet_real_labels.jsonl").read_bytes()
