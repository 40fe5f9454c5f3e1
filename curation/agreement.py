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
