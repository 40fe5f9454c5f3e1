"""Breakdowns beyond the factor table: meta-label x factor, prevalence shift, calibration. No Django."""

from __future__ import annotations

import numpy as np

from catalog.factors import FACTOR_KEYS, META_LABELS

N_META = len(META_LABELS)
ECE_BINS = 15  # the toolkit's estimated_calibration_error default


def metalabel_factor_counts(
    correct: np.ndarray, valid: np.ndarray, factors: np.ndarray, meta: np.ndarray
) -> dict[str, np.ndarray]:
    """Counts per model x meta-label x factor [m, 17, 16] and per model x meta-label [m, 17]
    (the toolkit's compute_factor_metaclass_accuracies, grouped by model and meta-label).
    Images are sorted by meta-label once, so each meta-label is a contiguous slice (a view)."""
    m = correct.shape[0]
    perm = np.argsort(meta, kind="stable")
    bounds = np.searchsorted(meta[perm], np.arange(N_META + 1))
    v = valid[:, perm].astype(np.float32)
    c = correct[:, perm].astype(np.float32)
    f = factors[perm].astype(np.float32)
    n = np.zeros((m, N_META, len(FACTOR_KEYS)), dtype=np.int64)
    k = np.zeros_like(n)
    total = np.zeros((m, N_META), dtype=np.int64)
    right = np.zeros_like(total)
    for j in range(N_META):
        lo, hi = bounds[j], bounds[j + 1]
        if hi == lo:
            continue
        n[:, j] = np.rint(v[:, lo:hi] @ f[lo:hi])
        k[:, j] = np.rint(c[:, lo:hi] @ f[lo:hi])
        total[:, j], right[:, j] = np.rint(v[:, lo:hi].sum(axis=1)), np.rint(c[:, lo:hi].sum(axis=1))
    return {"n": n, "k": k, "total": total, "correct": right}


def metalabel_error_ratios(c: dict[str, np.ndarray]) -> np.ndarray:
    """Error ratio of each factor within each meta-label [m, 17, 16]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        err_f = 1 - c["k"] / c["n"]
        err = 1 - c["correct"] / c["total"]
        return err_f / err[:, :, None]


def robust_susceptible(ratios: np.ndarray, n: np.ndarray, *, top: int = 4, min_images: int = 30) -> dict:
    """The paper's Table 4 for one model: per meta-label the `top` most robust (lowest error ratio)
    and most susceptible factors, ranked among factors with at least `min_images` images."""
    out = {}
    for j, ml in enumerate(META_LABELS):
        ok = np.flatnonzero((n[j] >= min_images) & np.isfinite(ratios[j]))
        order = ok[np.argsort(ratios[j, ok], kind="stable")]
        # with fewer than 2 * top rankable factors, the two lists split them instead of overlapping
        n_rob = min(top, len(order) // 2) if len(order) < 2 * top else top
        n_sus = min(top, len(order) - n_rob)
        out[ml] = {
            "robust": [[FACTOR_KEYS[i], float(ratios[j, i])] for i in order[:n_rob]],
            "susceptible": [[FACTOR_KEYS[i], float(ratios[j, i])] for i in order[::-1][:n_sus]],
        }
    return out


def prevalence_shift(correct: np.ndarray, valid: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The toolkit's misclassification shift [m, 16]: (share of factor among the model's errors -
    share among all its images) / share among all; 0 where undefined. In top-factor mode it equals
    error ratio - 1 (each image has one factor), so it adds information only with multi factors."""
    f = factors.astype(np.float32)
    err = np.rint((valid & ~correct).astype(np.float32) @ f).astype(np.float64)
    tot = np.rint(valid.astype(np.float32) @ f).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mis = err / err.sum(axis=1, keepdims=True)
        prev = tot / tot.sum(axis=1, keepdims=True)
        shift = (mis - prev) / prev
    return np.nan_to_num(shift, nan=0.0, posinf=0.0, neginf=0.0)


def ece(correct: np.ndarray, prob: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """The toolkit's estimated_calibration_error (15 equal-width bins)."""
    if len(prob) == 0:
        return float("nan")
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], prob)
    total = np.bincount(ids, minlength=n_bins)
    conf = np.bincount(ids, weights=prob, minlength=n_bins)
    acc = np.bincount(ids, weights=correct, minlength=n_bins)
    nz = total > 0
    return float(np.sum(np.abs(acc[nz] / total[nz] - conf[nz] / total[nz]) * (total[nz] / len(prob))))


def reliability(correct: np.ndarray, prob: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, list]:
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], prob)
    total = np.bincount(ids, minlength=n_bins)
    conf = np.bincount(ids, weights=prob, minlength=n_bins)
    acc = np.bincount(ids, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "n": total.tolist(),
            "confidence": np.where(total > 0, conf / total, np.nan).tolist(),
            "accuracy": np.where(total > 0, acc / total, np.nan).tolist(),
        }


def ece_per_factor(correct: np.ndarray, valid: np.ndarray, prob: np.ndarray, factors: np.ndarray) -> dict:
    """One model: ECE overall and on each factor's images (the toolkit's binning; one bincount over
    (factor, bin) pairs instead of 16 passes)."""
    out: dict = {"overall": ece(correct[valid].astype(float), prob[valid])}
    bins = np.linspace(0.0, 1.0, ECE_BINS + 1)
    rows, cols = np.nonzero(factors & valid[:, None])
    ids = np.searchsorted(bins[1:-1], prob[rows])
    key = cols * ECE_BINS + ids
    size = len(FACTOR_KEYS) * ECE_BINS
    total = np.bincount(key, minlength=size).reshape(len(FACTOR_KEYS), ECE_BINS)
    conf = np.bincount(key, weights=prob[rows], minlength=size).reshape(total.shape)
    acc = np.bincount(key, weights=correct[rows], minlength=size).reshape(total.shape)
    for i, k in enumerate(FACTOR_KEYS):
        t = total[i]
        nz = t > 0
        n = t.sum()
        out[k] = float(np.sum(np.abs(acc[i, nz] / t[nz] - conf[i, nz] / t[nz]) * (t[nz] / n))) if n else None
    return out


def ece_batch(correct: np.ndarray, valid: np.ndarray, prob: np.ndarray, factors: np.ndarray) -> list[dict]:
    """`ece_per_factor` of m models at once: per confidence bin, one product of the stacked
    (in bin, confidence, correct) indicators [3m, n] with [1 | factors] [n, 17]."""
    m, n = correct.shape
    p = np.nan_to_num(prob).astype(np.float32)
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    ids = np.searchsorted(edges[1:-1], p)  # [m, n], the toolkit's binning
    rhs = np.concatenate([np.ones((n, 1), np.float32), factors.astype(np.float32)], axis=1)
    ncol = rhs.shape[1]
    total = np.zeros((m, ECE_BINS, ncol))
    conf, acc = np.zeros_like(total), np.zeros_like(total)
    cf = correct.astype(np.float32)
    stacked = np.empty((3 * m, n), dtype=np.float32)
    for b in range(ECE_BINS):
        inbin = ((ids == b) & valid).astype(np.float32)
        stacked[:m] = inbin
        np.multiply(inbin, p, out=stacked[m : 2 * m])
        np.multiply(inbin, cf, out=stacked[2 * m :])
        out = stacked @ rhs
        total[:, b], conf[:, b], acc[:, b] = out[:m], out[m : 2 * m], out[2 * m :]
    total = np.rint(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.abs(acc / total - conf / total) * total
        ece = np.nansum(per, axis=1) / total.sum(axis=1)  # [m, 17]
    keys = ["overall", *FACTOR_KEYS]
    return [{k: (float(ece[i, j]) if total[i, :, j].sum() > 0 else None) for j, k in enumerate(keys)} for i in range(m)]
