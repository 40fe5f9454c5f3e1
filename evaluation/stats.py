"""Intervals and tests for accuracies and error ratios, vectorised. No Django imports.

- accuracy: Wilson score interval (same formula as statsmodels `proportion_confint(method="wilson")`);
- error ratio e_f / e: delta method on the log scale, with the factor's images and the other
  images as two independent binomials (the overall error e mixes both), counts + 0.5 when a
  count is 0 (checked for coverage on simulated data in tests/evaluation/test_stats.py);
- factor vs rest: two-sided two-proportion z-test of the error rate, Holm-corrected across the
  16 factors of a model;
- two models on the same images: McNemar (exact binomial below 25 discordant pairs, else
  chi-square with continuity correction, as statsmodels `mcnemar`), with the paired accuracy
  difference and its Wald interval;
- model groups: Alexander-Govern (`scipy.stats.alexandergovern`), as in the paper.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

Z95 = 1.959963984540054
FEW_IMAGES = 30  # below this a factor's numbers are flagged (and not ranked)


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return center - half, center + half


def error_ratio_interval(
    err_f: np.ndarray, n_f: np.ndarray, err_all: np.ndarray, n_all: np.ndarray, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """95 % interval of (err_f / n_f) / (err_all / n_all) where the factor's images are part of all."""
    err_f, n_f = np.asarray(err_f, float), np.asarray(n_f, float)
    err_all, n_all = np.asarray(err_all, float), np.asarray(n_all, float)
    err_r, n_r = err_all - err_f, n_all - n_f
    with np.errstate(invalid="ignore", divide="ignore"):
        ef = np.where(err_f == 0, 0.5 / (n_f + 1), err_f / n_f)
        ef = np.where(err_f == n_f, (n_f - 0.5) / n_f, ef)
        er = np.where(err_r <= 0, 0.5 / (n_r + 1), err_r / np.maximum(n_r, 1))
        e = (n_f * ef + n_r * er) / n_all
        d_f = 1 / ef - n_f / (n_all * e)
        d_r = -n_r / (n_all * e)
        var = d_f**2 * ef * (1 - ef) / n_f + np.where(n_r > 0, d_r**2 * er * (1 - er) / np.maximum(n_r, 1), 0)
        ratio = ef / e
        half = z * np.sqrt(var)
        lo, hi = ratio * np.exp(-half), ratio * np.exp(half)
    lo = np.where(err_f == 0, 0.0, lo)
    bad = (n_f <= 0) | (err_all <= 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def factor_vs_rest(err_f: np.ndarray, n_f: np.ndarray, err_all: np.ndarray, n_all: np.ndarray) -> np.ndarray:
    """Two-sided p-value: is the error rate on the factor's images different from the others'?"""
    err_f, n_f = np.asarray(err_f, float), np.asarray(n_f, float)
    err_r, n_r = np.asarray(err_all, float) - err_f, np.asarray(n_all, float) - n_f
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (err_f + err_r) / (n_f + n_r)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n_f + 1 / n_r))
        zstat = (err_f / n_f - err_r / n_r) / se
        p = 2 * stats.norm.sf(np.abs(zstat))
    return np.where((n_f > 0) & (n_r > 0) & (se > 0), p, np.where((n_f > 0) & (n_r > 0), 1.0, np.nan))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values along the last axis (NaN = not tested)."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    flat, res = p.reshape(-1, p.shape[-1]), out.reshape(-1, p.shape[-1])
    for i, row in enumerate(flat):
        ok = np.flatnonzero(~np.isnan(row))
        if not len(ok):
            continue
        order = ok[np.argsort(row[ok], kind="stable")]
        m = len(ok)
        adj = np.maximum.accumulate((m - np.arange(m)) * row[order])
        res[i, order] = np.minimum(adj, 1.0)
    return out


def mcnemar(b: np.ndarray, c: np.ndarray, *, exact_below: int = 25) -> np.ndarray:
    """p-value of McNemar's test from the discordant counts b (A right, B wrong) and c."""
    b, c = np.asarray(b, float), np.asarray(c, float)
    n = b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        exact = np.minimum(2 * stats.binom.cdf(np.minimum(b, c), n, 0.5), 1.0)
        chi = (np.abs(b - c) - 1) ** 2 / n
        asym = stats.chi2.sf(chi, 1)
    return np.where(n == 0, 1.0, np.where(n < exact_below, exact, asym))


def paired_difference(b: np.ndarray, c: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, ...]:
    """Accuracy of A minus accuracy of B on the same n images, with its Wald interval."""
    b, c, n = np.asarray(b, float), np.asarray(c, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (b - c) / n
        se = np.sqrt(np.maximum(b + c - (b - c) ** 2 / n, 0)) / n
    return d, d - z * se, d + z * se


def alexander_govern(groups: dict[str, np.ndarray]) -> dict[str, float] | None:
    """Do these groups of models differ in mean (e.g. error ratio of one factor)? None if untestable."""
    arrays = [np.asarray(a, float)[np.isfinite(a)] for a in groups.values()]
    arrays = [a for a in arrays if len(a) >= 2 and np.ptp(a) > 0]
    if len(arrays) < 2:
        return None
    res = stats.alexandergovern(*arrays)
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "groups": len(arrays)}
