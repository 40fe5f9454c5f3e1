"""The paper's dataset statistics (ImageNet-X Sec. 3.1, App. A.3-A.4), vectorised. No Django imports.

Input: a pandas DataFrame with one row per curated image and the columns
`split` (str), `meta_label` (str), `top_factor` (factor key or "") and one bool column per
factor (FACTOR_KEYS). Output: JSON-safe dicts (stored on the run, drawn by figures.py).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from catalog.factors import FACTOR_KEYS, META_LABELS

# Correlations are kept when significant at 5% after a Bonferroni correction over the pairs
# tested: with 120 factor pairs and up to 272 factor x meta-label pairs, an uncorrected 5%
# level would show a dozen spurious correlations by chance alone.
ALPHA = 0.05


def factor_counts(df: pd.DataFrame) -> dict[str, dict]:
    """Per split (and "all"): images, counts of every selected factor and of top factors (Fig. 2, Table 2)."""
    out: dict[str, dict] = {}
    keys = list(FACTOR_KEYS)
    groups = [("all", df)] + [(str(s), g) for s, g in df.groupby("split", sort=True)]
    for name, g in groups:
        selected = g[keys].sum(axis=0).astype(int)
        top = g["top_factor"].value_counts().reindex(keys, fill_value=0).astype(int)
        n = len(g)
        if "reference_top_factor" in g and (g["reference_top_factor"] != "").any():
            ref = g["reference_top_factor"].value_counts().reindex(keys, fill_value=0).astype(int)
        else:
            ref = None
        out[name] = {
            "images": int(n),
            "selected": {k: int(selected[k]) for k in keys},
            "top": {k: int(top[k]) for k in keys},
            "selected_share": {k: (float(selected[k]) / n if n else 0.0) for k in keys},
            "top_share": {k: (float(top[k]) / n if n else 0.0) for k in keys},
        }
        if ref is not None:  # the published top factors, for comparison with ours (Table 2)
            out[name]["reference_top"] = {k: int(ref[k]) for k in keys}
    return out


def factors_per_image(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Histogram of the number of selected factors per image, per split (Fig. 7)."""
    n_sel = df[list(FACTOR_KEYS)].sum(axis=1).astype(int)
    out: dict[str, dict[str, int]] = {}
    for name, s in [("all", n_sel)] + [(str(k), n_sel[df["split"] == k]) for k in sorted(df["split"].unique())]:
        counts = np.bincount(s.to_numpy(), minlength=1) if len(s) else np.zeros(1, dtype=int)
        out[name] = {str(i): int(c) for i, c in enumerate(counts)}
    return out


def _spearman_block(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho and p-values of every column of a with every column of b (one scipy call)."""
    n_a = a.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        res = sps.spearmanr(np.hstack([a, b]).astype(float), axis=0)
    rho = np.atleast_2d(np.asarray(res.statistic, dtype=float))
    p = np.atleast_2d(np.asarray(res.pvalue, dtype=float))
    return rho[:n_a, n_a:], p[:n_a, n_a:]


def spearman(df: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """Significant Spearman correlations factor x factor and factor x meta-label (Fig. 8).

    Constant columns (a factor nobody selected, a meta-label absent) have no correlation and are
    left out. Only pairs with Bonferroni-corrected p < alpha are returned.
    """
    keys = list(FACTOR_KEYS)
    x = df[keys].to_numpy(dtype=float)
    meta = pd.Categorical(df["meta_label"], categories=list(META_LABELS))
    m = np.zeros((len(df), len(META_LABELS)))
    codes = meta.codes
    m[np.arange(len(df))[codes >= 0], codes[codes >= 0]] = 1.0
    out: dict = {"alpha": alpha, "correction": "bonferroni", "factor_factor": [], "factor_meta": []}
    if len(df) < 3:
        return out
    live_f = np.nonzero(x.std(axis=0) > 0)[0]
    live_m = np.nonzero(m.std(axis=0) > 0)[0]
    if len(live_f) >= 2:
        rho, p = _spearman_block(x[:, live_f], x[:, live_f])
        iu = np.triu_indices(len(live_f), k=1)
        n_tests = len(iu[0])
        for i, j in zip(*iu, strict=True):
            padj = min(1.0, p[i, j] * n_tests)
            if padj < alpha:
                out["factor_factor"].append(
                    {"a": keys[live_f[i]], "b": keys[live_f[j]], "rho": float(rho[i, j]), "p": padj}
                )
        out["factor_factor_tests"] = int(n_tests)
    if len(live_f) and len(live_m):
        rho, p = _spearman_block(x[:, live_f], m[:, live_m])
        n_tests = rho.size
        for i in range(rho.shape[0]):
            for j in range(rho.shape[1]):
                padj = min(1.0, p[i, j] * n_tests)
                if padj < alpha:
                    out["factor_meta"].append(
                        {
                            "factor": keys[live_f[i]],
                            "meta_label": META_LABELS[live_m[j]],
                            "rho": float(rho[i, j]),
                            "p": padj,
                        }
                    )
        out["factor_meta_tests"] = int(n_tests)
    return out


def split_difference(counts: dict[str, dict]) -> dict:
    """Chi-square test of independence between split (train/val) and factor, for selected and top factors.

    Also gives Cramer's V, because with ~60k images even a tiny difference is "significant":
    V says how large it is.
    """
    out: dict = {}
    splits = [s for s in ("train", "val") if s in counts]
    if len(splits) < 2:
        return {"available": False, "reason": "needs both a train and a val split"}
    out["available"] = True
    for what in ("selected", "top"):
        table = np.array([[counts[s][what][k] for k in FACTOR_KEYS] for s in splits], dtype=float)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
            out[what] = {"chi2": None, "dof": 0, "p": None, "cramers_v": None}
            continue
        chi2, p, dof, _ = sps.chi2_contingency(table)
        v = math.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
        out[what] = {"chi2": float(chi2), "dof": int(dof), "p": float(p), "cramers_v": v}
    return out


def compute_all(df: pd.DataFrame) -> dict:
    counts = factor_counts(df)
    return {
        "factor_counts": counts,
        "factors_per_image": factors_per_image(df),
        "spearman": spearman(df),
        "split_difference": split_difference(counts),
    }
