"""Per-factor accuracy and error ratio of many models at once, vectorised. No Django imports.

The toolkit (`imagenet_x.get_factor_accuracies`) merges each model's predictions with the
annotations in pandas, one model at a time. Here the predictions of m models, aligned to the
n annotated images, form a correctness matrix C [m, n]; the factor flags form F [n, 16]; every
per-factor count is one matrix product (C @ F), exact in float32 up to 2**24 images.

Two modes (`toolkit=`):
- toolkit-compatible (True): reproduces `get_factor_accuracies` + `error_ratio` exactly, defects
  included: an image with an empty ReaL label set counts as wrong for every model; the meta-label
  `other` (278 unrelated classes) counts a confusion between two `other` classes as correct.
- corrected (False, the default of the platform): images without ReaL labels are left out of
  ReaL accuracy; within `other`, only the right class is meta-label-correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catalog.factors import FACTOR_KEYS
from evaluation.labels import OTHER, LabelSet
from evaluation.parsing import Predictions

CORRECTNESS = ("class", "real_class", "metaclass")
# The column order of the toolkit's accuracies_per_factor.csv (imagenet_x.FACTORS).
TOOLKIT_FACTOR_ORDER = (
    "pose", "background", "pattern", "color", "smaller", "shape", "partial_view", "subcategory",
    "texture", "larger", "darker", "object_blocking", "person_blocking", "style", "brighter", "multiple_objects",
)  # fmt: skip
assert sorted(TOOLKIT_FACTOR_ORDER) == sorted(FACTOR_KEYS)
TOOLKIT_COLUMNS = [FACTOR_KEYS.index(k) for k in TOOLKIT_FACTOR_ORDER]


@dataclass
class Aligned:
    """One model's predictions on the rows of a LabelSet."""

    pred: np.ndarray  # int32 [n], -1 = no prediction for this annotated image
    prob: np.ndarray | None  # float32 [n], NaN where no prediction
    correct5: np.ndarray | None  # bool [n], the true class among the top 5
    n_predictions: int  # rows in the file
    n_unknown: int  # file names the label set does not know (ignored, as the toolkit's inner merge)

    @property
    def n_matched(self) -> int:
        return int((self.pred >= 0).sum())


def align(labels: LabelSet, preds: Predictions) -> Aligned:
    rows = labels.index_of(preds.file_names)
    known = rows >= 0
    pred = np.full(labels.n, -1, dtype=np.int32)
    pred[rows[known]] = preds.predicted_class[known]
    prob = None
    if preds.probability is not None:
        prob = np.full(labels.n, np.nan, dtype=np.float32)
        prob[rows[known]] = preds.probability[known]
    c5 = None
    if preds.top5 is not None:
        c5 = np.zeros(labels.n, dtype=bool)
        r = rows[known]
        c5[r] = (preds.top5[known] == labels.classes[r, None]).any(axis=1)
    return Aligned(pred, prob, c5, len(preds), int((~known).sum()))


def correctness(labels: LabelSet, pred: np.ndarray, kind: str, *, toolkit: bool) -> tuple[np.ndarray, np.ndarray]:
    """(correct, counted) bool matrices [m, n] for predictions `pred` [m, n] (-1 = none)."""
    valid = pred >= 0
    cls = labels.classes[None, :]
    if kind == "class":
        correct = pred == cls
    elif kind == "metaclass":
        safe = np.where(valid, pred, 0)
        meta = labels.meta[None, :]
        correct = valid & (labels.class_meta[safe] == meta)
        if not toolkit:
            correct &= (meta != OTHER) | (pred == cls)
    elif kind == "real_class":
        if labels.real_keys is None:
            raise ValueError("This label set has no ReaL labels (they exist for ImageNet val only).")
        bits = labels.real_bits()
        safe = np.where(valid, pred, 0)
        byte = bits[np.arange(labels.n)[None, :], safe >> 3]
        correct = valid & ((byte >> (7 - (safe & 7)).astype(np.uint8)) & 1).astype(bool)
        if not toolkit:
            valid = valid & labels.real_known[None, :]
    else:
        raise ValueError(f"correctness must be one of {CORRECTNESS}, not {kind!r}")
    return correct & valid, valid


@dataclass
class FactorCounts:
    n: np.ndarray  # int64 [m, 16]: images with the factor that the model predicted
    k: np.ndarray  # int64 [m, 16]: of which correct
    total: np.ndarray  # int64 [m]
    correct: np.ndarray  # int64 [m]

    @property
    def accuracy(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.k / self.n

    @property
    def average(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.correct / self.total

    @property
    def error_ratio(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (1 - self.accuracy) / (1 - self.average)[:, None]


@dataclass
class GroupedCounts(FactorCounts):
    """FactorCounts plus the meta-label x factor and per-class counts from the same products."""

    ml_n: np.ndarray | None = None  # [m, 17, 16]
    ml_k: np.ndarray | None = None
    ml_total: np.ndarray | None = None  # [m, 17]
    ml_correct: np.ndarray | None = None
    class_n: np.ndarray | None = None  # [m, n_classes]
    class_k: np.ndarray | None = None


def grouped_counts(correct: np.ndarray, valid: np.ndarray, labels: LabelSet, *, by_meta: bool = True) -> GroupedCounts:
    """Every count of one correctness kind: two dense products with G (its factor and meta-label
    columns only unless `by_meta`) and one bincount per matrix for the classes."""
    g, _ = labels.design()
    nf = len(FACTOR_KEYS)
    nm = (g.shape[1] - nf) // (nf + 1)
    if not by_meta:
        g = labels.design_small()
    cf, vf = correct.astype(np.float32), valid.astype(np.float32)
    k_all = np.rint(cf @ g).astype(np.int64)
    n_all = np.rint(vf @ g).astype(np.int64)
    m, c = correct.shape[0], labels.n_classes
    offs = (np.arange(m, dtype=np.int64)[:, None] * c + labels.classes[None, :]).ravel()
    class_n = np.bincount(offs, weights=vf.ravel(), minlength=m * c).reshape(m, c).astype(np.int64)
    class_k = np.bincount(offs, weights=cf.ravel(), minlength=m * c).reshape(m, c).astype(np.int64)
    out = GroupedCounts(
        n=n_all[:, :nf], k=k_all[:, :nf], total=valid.sum(axis=1).astype(np.int64),
        correct=correct.sum(axis=1).astype(np.int64), class_n=class_n, class_k=class_k,
    )  # fmt: skip
    if by_meta:
        e1, e2 = nf, nf + nm * nf
        out.ml_n, out.ml_k = n_all[:, e1:e2].reshape(m, nm, nf), k_all[:, e1:e2].reshape(m, nm, nf)
        out.ml_total, out.ml_correct = n_all[:, e2:], k_all[:, e2:]
    return out


def factor_counts(correct: np.ndarray, valid: np.ndarray, factors: np.ndarray) -> FactorCounts:
    f = factors.astype(np.float32)
    n = valid.astype(np.float32) @ f
    k = correct.astype(np.float32) @ f
    return FactorCounts(
        n=np.rint(n).astype(np.int64),
        k=np.rint(k).astype(np.int64),
        total=valid.sum(axis=1).astype(np.int64),
        correct=correct.sum(axis=1).astype(np.int64),
    )


def toolkit_table(counts: FactorCounts) -> dict[str, np.ndarray]:
    """`get_factor_accuracies`'s columns: the 16 factors (toolkit order), worst_factor, average.

    The toolkit computes correct counts from the rows where the model was right, grouped by model,
    so a model with no correct prediction at all drops out and gets NaN factor accuracies; 0/0 is
    NaN; worst_factor skips NaN.
    """
    acc = counts.accuracy
    acc = np.where((counts.correct == 0)[:, None], np.nan, acc)
    out = {key: acc[:, FACTOR_KEYS.index(key)] for key in TOOLKIT_FACTOR_ORDER}
    with np.errstate(all="ignore"):
        allnan = np.isnan(acc).all(axis=1)
        out["worst_factor"] = np.where(allnan, np.nan, np.nanmin(np.where(allnan[:, None], 0, acc), axis=1))
    out["average"] = counts.average
    return out


def error_ratio(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`imagenet_x.error_ratio`: (1 - factor accuracy) / (1 - average accuracy)."""
    with np.errstate(all="ignore"):
        return {k: (1 - table[k]) / (1 - table["average"]) for k in TOOLKIT_FACTOR_ORDER}


def worst_k_classes(
    labels: LabelSet, correct: np.ndarray, valid: np.ndarray, k: int = 100, counts: GroupedCounts | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy over the k classes where each model is worst (the toolkit's `worst_k_class_acc`),
    and those classes [m, k]. Classes without counted images are skipped; ties by class index."""
    if counts is None or counts.class_n is None:
        counts = grouped_counts(correct, valid, labels)
    n, kk = counts.class_n, counts.class_k
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, kk / np.maximum(n, 1), np.inf)
    k = min(k, int((n > 0).sum(axis=1).min()) if len(n) else k)
    worst = np.argsort(acc, axis=1, kind="stable")[:, :k]
    sel_n = np.take_along_axis(n, worst, axis=1)
    sel_k = np.take_along_axis(kk, worst, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sel_k.sum(axis=1) / sel_n.sum(axis=1), worst


def stack(aligned: list[Aligned]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Prediction [m, n], probability [m, n] (or None) and top-5 correctness (or None)."""
    pred = np.stack([a.pred for a in aligned])
    prob = np.stack([a.prob for a in aligned]) if all(a.prob is not None for a in aligned) else None
    c5 = np.stack([a.correct5 for a in aligned]) if all(a.correct5 is not None for a in aligned) else None
    return pred, prob, c5
