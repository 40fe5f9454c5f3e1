"""Agreement of a selector's top factors with a published reference. No Django imports."""

from __future__ import annotations

import numpy as np

from catalog.factors import FACTOR_KEYS


def agreement(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict:
    """Share of images with two or more selected factors whose chosen top factor equals the reference.

    Images with a single selected factor are left out: every selector agrees on them trivially.
    The confusion table counts reference -> chosen over the same images (non-zero cells only).
    """
    multi = (mask.sum(axis=1) >= 2) & (ref >= 0)
    n = int(multi.sum())
    agree = int((pred[multi] == ref[multi]).sum())
    k = len(FACTOR_KEYS)
    cm = np.zeros((k, k), dtype=int)
    ok = multi & (pred >= 0)
    np.add.at(cm, (ref[ok], pred[ok]), 1)
    confusion = {
        FACTOR_KEYS[i]: {FACTOR_KEYS[j]: int(cm[i, j]) for j in range(k) if cm[i, j]} for i in range(k) if cm[i].any()
    }
    return {"images_multi_factor": n, "agree": agree, "share": (agree / n if n else None), "confusion": confusion}


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95 % Wilson score interval of a share k/n (None when n = 0); sound near 0 and 1, unlike k/n +- 2 se."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def per_factor(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, dict]:
    """Per factor, over images with two or more selected factors and a reference top factor:
    recall = of the images whose reference top factor is f, the share where we chose f;
    precision = of the images where we chose f, the share whose reference is f. Each with n and
    its 95 % Wilson interval; factors that are neither chosen nor a reference are left out."""
    multi = (mask.sum(axis=1) >= 2) & (ref >= 0)
    p, r = pred[multi], ref[multi]
    out: dict[str, dict] = {}
    for i, key in enumerate(FACTOR_KEYS):
        n_ref, n_pred = int((r == i).sum()), int((p == i).sum())
        if not (n_ref or n_pred):
            continue
        hits = int(((r == i) & (p == i)).sum())
        out[key] = {
            "reference": n_ref,
            "chosen": n_pred,
            "agree": hits,
            "recall": hits / n_ref if n_ref else None,
            "recall_ci95": wilson_interval(hits, n_ref),
            "precision": hits / n_pred if n_pred else None,
            "precision_ci95": wilson_interval(hits, n_pred),
        }
    return out


def agreement_summary(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict:
    """agreement() without the confusion table, plus its interval and the per-factor figures."""
    out = agreement(pred, ref, mask)
    out.pop("confusion")
    out["share_ci95"] = wilson_interval(out["agree"], out["images_multi_factor"])
    out["per_factor"] = per_factor(pred, ref, mask)
    return out
