"""Prediction files in: the toolkit's CSV, logits/probabilities as .npz/.npy. No Django imports.

Every refusal is a `PredictionFileError` whose message names the line (CSV) or the array
(.npz) at fault, raised before anything is stored. Uploads are never unpickled: `np.load` runs
with `allow_pickle=False` always; the toolkit's testbed `.pickle` files are read only by
`read_testbed_pickle`, which the command line calls for a local file the user names (a pickle
can run code when loaded, so it must never come from a browser or the API).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# 50,000 rows of `file_name,predicted_class,predicted_probability` take ~2.3 MB; a top-5 column
# adds ~1 MB; logits of 50,000 x 1,000 float32 take 200 MB, so .npz files may be larger.
MAX_CSV_BYTES = 32 * 1024 * 1024
MAX_ARRAY_BYTES = 256 * 1024 * 1024
REQUIRED = ("file_name", "predicted_class")
OPTIONAL = ("predicted_probability", "top5")


class PredictionFileError(ValueError):
    def __init__(self, message: str, *, line: int | None = None, code: str = "bad_predictions"):
        super().__init__(message)
        self.message, self.line, self.code = message, line, code


@dataclass
class Predictions:
    file_names: np.ndarray | pa.Array  # str [n] (an Arrow array straight from the CSV reader)
    predicted_class: np.ndarray  # int32 [n]
    probability: np.ndarray | None = None  # float32 [n], the predicted class's probability
    top5: np.ndarray | None = None  # int32 [n, 5], best first

    def __len__(self) -> int:
        return len(self.file_names)


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_size(data: bytes, limit: int, what: str) -> None:
    if len(data) == 0:
        raise PredictionFileError(f"The {what} is empty.", code="empty_file")
    if len(data) > limit:
        raise PredictionFileError(
            f"The {what} is {len(data) / 2**20:.1f} MiB; the limit is {limit // 2**20} MiB.", code="file_too_large"
        )


def _not_utf8(data: bytes) -> PredictionFileError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of_offset(data, exc.start)
        return PredictionFileError(f"Line {line} is not UTF-8 text (byte {exc.start}).", line=line, code="not_utf8")
    return PredictionFileError("The file is not UTF-8 text.", code="not_utf8")


def _header(text_head: str) -> list[str]:
    first = text_head.split("\n", 1)[0].rstrip("\r")
    cols = [c.strip() for c in next(csv.reader([first]))] if first else []
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise PredictionFileError(
            f"Line 1: the header is {first[:120]!r}; it must name the columns "
            "file_name,predicted_class[,predicted_probability] (the imagenet_x toolkit's format; "
            f"missing: {', '.join(missing)}).",
            line=1,
            code="bad_header",
        )
    dup = {c for c in cols if cols.count(c) > 1}
    if dup:
        raise PredictionFileError(f"Line 1: column {sorted(dup)[0]!r} appears twice in the header.", line=1)
    return cols


def _slow_find(data: str, cols: list[str], n_classes: int) -> PredictionFileError:
    """The first bad line, found the slow way (only after the fast reader refused the file)."""
    reader = csv.reader(io.StringIO(data))
    next(reader)
    width = len(cols)
    ic, ip = (
        cols.index("predicted_class"),
        cols.index("predicted_probability") if "predicted_probability" in cols else -1,
    )
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            return PredictionFileError(f"Line {line_no} is empty.", line=line_no)
        if len(row) != width:
            return PredictionFileError(f"Line {line_no} has {len(row)} fields; the header has {width}.", line=line_no)
        if not row[cols.index("file_name")].strip():
            return PredictionFileError(f"Line {line_no}: file_name is empty.", line=line_no)
        try:
            int(row[ic])
        except ValueError:
            return PredictionFileError(
                f"Line {line_no}: predicted_class {row[ic]!r} is not a class index (an integer 0-{n_classes - 1}).",
                line=line_no,
            )
        if ip >= 0:
            try:
                float(row[ip])
            except ValueError:
                return PredictionFileError(
                    f"Line {line_no}: predicted_probability {row[ip]!r} is not a number in [0, 1].", line=line_no
                )
        if "top5" in cols:
            try:
                [int(x) for x in row[cols.index("top5")].split()]
            except ValueError:
                return PredictionFileError(f"Line {line_no}: top5 must be 5 class indices separated by spaces.")
    return PredictionFileError("The file could not be read as CSV.")


def parse_csv(data: bytes, *, n_classes: int, max_bytes: int = MAX_CSV_BYTES) -> Predictions:
    """The toolkit's `file_name,predicted_class,predicted_probability` (extra columns allowed;
    `top5`: five class indices separated by spaces, best first)."""
    _check_size(data, max_bytes, "predictions file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if len(data) < 4096 and not data.strip():
        raise PredictionFileError("The predictions file is empty.", code="empty_file")
    # Only the header is decoded here; Arrow validates the UTF-8 of every string it reads, and a
    # refusal is located by `_not_utf8` (decoding the whole file costs a copy per file).
    head = data[:4096]
    try:
        head_text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the 4096-byte boundary
            raise _not_utf8(data) from None
        head_text = head[: exc.start].decode("utf-8")
    cols = _header(head_text)
    types = {"file_name": pa.string(), "predicted_class": pa.int64()}
    if "predicted_probability" in cols:
        types["predicted_probability"] = pa.float64()
    if "top5" in cols:
        types["top5"] = pa.string()
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            # One thread: a 50,000-row file parses in ~4 ms; Arrow's thread pool made it 2-4x slower on
            # a busy 2-core machine, and batches parse many files anyway.
            read_options=pacsv.ReadOptions(block_size=1 << 24, use_threads=False),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=[c for c in cols if c in types],
                strings_can_be_null=False,
                null_values=[""],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(data) from None
        raise _slow_find(text, cols, n_classes) from None
    n = table.num_rows
    if n == 0:
        raise PredictionFileError("The predictions file has a header but no rows.", code="empty_file")

    def first_bad(mask: np.ndarray) -> int | None:
        bad = np.flatnonzero(mask)
        return int(bad[0]) + 2 if len(bad) else None

    for name in types:
        if table.column(name).null_count:
            line = first_bad(table.column(name).is_null().to_numpy(zero_copy_only=False))
            what = "is empty" if name != "file_name" else "has no file_name"
            raise PredictionFileError(f"Line {line} {what} ({name}).", line=line)
    names_col = table.column("file_name").combine_chunks()
    if pc.min(pc.binary_length(names_col)).as_py() == 0:
        empty = first_bad(pc.equal(pc.binary_length(names_col), 0).to_numpy(zero_copy_only=False))
        raise PredictionFileError(f"Line {empty}: file_name is empty.", line=empty)
    cls = table.column("predicted_class").to_numpy()
    bad = first_bad((cls < 0) | (cls >= n_classes))
    if bad is not None:
        raise PredictionFileError(
            f"Line {bad}: predicted_class {int(cls[bad - 2])} is out of range; the dataset has classes "
            f"0-{n_classes - 1}.",
            line=bad,
            code="class_out_of_range",
        )
    prob = None
    if "predicted_probability" in types:
        p = table.column("predicted_probability").to_numpy()
        bad = first_bad(~((p >= 0) & (p <= 1)))  # NaN fails both comparisons
        if bad is not None:
            v = p[bad - 2]
            shown = "NaN" if math.isnan(v) else repr(float(v))
            raise PredictionFileError(
                f"Line {bad}: predicted_probability {shown} is not a probability in [0, 1].",
                line=bad,
                code="bad_probability",
            )
        prob = p.astype(np.float32)
    if not _same_as_last_unique(names_col):
        if pc.count_distinct(names_col).as_py() != n:
            _refuse_duplicates(np.asarray(names_col.to_pylist(), dtype=str))
        _remember_unique(names_col)
    names = names_col
    top5 = None
    if "top5" in types:
        top5 = _parse_top5(table.column("top5").to_pylist(), n_classes)
    return Predictions(file_names=names, predicted_class=cls.astype(np.int32), probability=prob, top5=top5)


# Files of one batch usually list the same names in the same order (the toolkit's files all follow
# filename_label.csv): comparing with the last file found unique (~1 ms) replaces the hash count.
_last_unique: list[pa.Array] = []


def _same_as_last_unique(names: pa.Array) -> bool:
    last = _last_unique[0] if _last_unique else None
    return last is not None and len(last) == len(names) and bool(pc.all(pc.equal(names, last)).as_py())


def _remember_unique(names: pa.Array) -> None:
    _last_unique[:] = [names]


def _refuse_duplicates(names: np.ndarray, *, rows_are_lines: bool = True) -> None:
    order = np.argsort(names, kind="stable")
    s = names[order]
    dup = np.flatnonzero(s[1:] == s[:-1])
    if len(dup):
        # report the earliest second occurrence in file order
        second = order[dup + 1]
        i = int(second.min())
        first = int(order[np.searchsorted(s, names[i])])
        if rows_are_lines:
            raise PredictionFileError(
                f"Line {i + 2}: file name {names[i]!r} appears again (first on line {first + 2}); one prediction per image.",
                line=i + 2,
                code="duplicate_file_name",
            )
        raise PredictionFileError(
            f"Row {i}: file name {names[i]!r} appears again (first in row {first}).", code="duplicate_file_name"
        )


def _parse_top5(values: list[str], n_classes: int) -> np.ndarray:
    out = np.empty((len(values), 5), dtype=np.int32)
    for i, v in enumerate(values):
        parts = v.split()
        try:
            row = [int(x) for x in parts]
        except ValueError:
            row = []
        if len(row) != 5 or min(row) < 0 or max(row) >= n_classes:
            raise PredictionFileError(
                f"Line {i + 2}: top5 {v!r} must be 5 class indices in 0-{n_classes - 1} separated by spaces.",
                line=i + 2,
            )
        out[i] = row
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


def from_scores(names: np.ndarray, scores: np.ndarray, *, kind: str, n_classes: int) -> Predictions:
    """Top-1 class, its probability and the top 5 from a logits or probabilities matrix."""
    if scores.ndim != 2 or scores.shape[0] != len(names):
        raise PredictionFileError(
            f"The {kind} array has shape {scores.shape}; expected ({len(names)}, {n_classes}) (one row per file name)."
        )
    if scores.shape[1] != n_classes:
        raise PredictionFileError(
            f"The {kind} array has {scores.shape[1]} columns; the dataset has {n_classes} classes."
        )
    scores = np.asarray(scores, dtype=np.float32)
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores).all(axis=1))[0])
        raise PredictionFileError(f"Row {row} of {kind} holds NaN or infinity.", code="bad_probability")
    if kind == "probabilities":
        if scores.min() < 0 or scores.max() > 1:
            row = int(np.flatnonzero((scores < 0).any(axis=1) | (scores > 1).any(axis=1))[0])
            raise PredictionFileError(f"Row {row} of probabilities has values outside [0, 1].", code="bad_probability")
        probs = scores
    else:
        probs = softmax(scores.copy())
    k = min(5, n_classes)
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(probs, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1).astype(np.int32)
    pred = top[:, 0]
    return Predictions(
        file_names=names,
        predicted_class=pred,
        probability=probs[np.arange(len(names)), pred].astype(np.float32),
        top5=top if k == 5 else None,
    )


def parse_array_file(
    data: bytes, *, n_classes: int, file_names: np.ndarray | None = None, max_bytes: int = MAX_ARRAY_BYTES
) -> Predictions:
    """`.npz` with `file_names` and `logits` or `probabilities`; or `.npy` (logits) with `file_names`
    given separately. Never unpickled (object arrays are refused)."""
    _check_size(data, max_bytes, "array file")
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise PredictionFileError(f"The array file cannot be read without unpickling or is not .npy/.npz: {exc}")
    except Exception as exc:  # noqa: BLE001 - zipfile/format errors come in several types
        raise PredictionFileError(f"The array file is not a valid .npy/.npz file: {exc}")
    try:
        if isinstance(loaded, np.ndarray):
            if file_names is None:
                raise PredictionFileError("A .npy file holds no file names: upload a .npz with `file_names`.")
            names, scores, kind = file_names, loaded, "logits"
        else:
            keys = set(loaded.files)
            if "file_names" not in keys:
                raise PredictionFileError(f"The .npz holds {sorted(keys)}; it needs `file_names`.")
            kind = "logits" if "logits" in keys else "probabilities" if "probabilities" in keys else ""
            if not kind:
                raise PredictionFileError(f"The .npz holds {sorted(keys)}; it needs `logits` or `probabilities`.")
            names, scores = loaded["file_names"], loaded[kind]
    except ValueError as exc:  # an object array inside the .npz
        if isinstance(exc, PredictionFileError):
            raise
        raise PredictionFileError(f"The array file holds Python objects, which are never unpickled: {exc}")
    if names.dtype.kind not in "US":
        raise PredictionFileError(f"`file_names` must be an array of strings, not {names.dtype}.")
    names = names.astype(str)
    _refuse_duplicates(names, rows_are_lines=False)
    return from_scores(names, scores, kind=kind, n_classes=n_classes)


def read_testbed_pickle(path: str, *, file_names: np.ndarray, n_classes: int) -> tuple[str, Predictions]:
    """An imagenet-testbed `.pickle` ({"model": name, "logits": [50000, 1000]}), rows in the order
    of the toolkit's `filename_label.csv`. Command line only, local files only: unpickling runs
    code, so this is never reachable from an upload."""
    import pickle

    with open(path, "rb") as fh:
        obj = pickle.load(fh)  # noqa: S301 - a local file the user named on the command line
    return str(obj["model"]), from_scores(file_names, np.asarray(obj["logits"]), kind="logits", n_classes=n_classes)
