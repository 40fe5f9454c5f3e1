"""Agreement metrics, vectorised with numpy (no Django import, no per-row Python loops).

Shapes used throughout:
- a *count table* `(..., n_items, n_categories)`: how many raters put item i in category j.
  Leading dimensions are batches (bootstrap replicates), so one call computes every replicate.
- a *ratings tensor* `X (n_items, R, F)` of booleans with a mask `M (n_items, R)`: item i's
  r-th answer (answers of one item are packed into slots 0..m_i-1; slots are not people) for
  each of the F factors. `pack_ratings` builds both from flat rows.

References: Fleiss (1971) "Measuring nominal scale agreement among many raters";
Krippendorff (2011) "Computing Krippendorff's alpha-reliability" (coincidence matrices);
Passonneau (2006) MASI distance for set-valued annotations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# --- Packing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    item_ids: np.ndarray  # (n,) the item id of each row of X
    X: np.ndarray  # (n, R, F) bool
    M: np.ndarray  # (n, R) bool: slot holds an answer
    rater: np.ndarray  # (n, R) int: rater id in the slot, -1 when empty
    row: np.ndarray  # (n, R) int: index of the flat input row in the slot, -1 when empty


def pack_ratings(item_ids: np.ndarray, rater_ids: np.ndarray, flags: np.ndarray) -> Packed:
    """Pack flat rows (one answer each) into the (items, slots, factors) tensor."""
    item_ids = np.asarray(item_ids)
    rater_ids = np.asarray(rater_ids)
    flags = np.asarray(flags, dtype=bool)
    n_rows = len(item_ids)
    n_factors = flags.shape[1] if flags.ndim == 2 else 0
    if n_rows == 0:
        return Packed(
            np.zeros(0, int),
            np.zeros((0, 0, n_factors), bool),
            np.zeros((0, 0), bool),
            np.zeros((0, 0), int),
            np.zeros((0, 0), int),
        )
    order = np.argsort(item_ids, kind="stable")
    sorted_items = item_ids[order]
    uniq, start, inverse = np.unique(sorted_items, return_index=True, return_inverse=True)
    slot = np.arange(n_rows) - start[inverse]
    R = int(slot.max()) + 1
    X = np.zeros((len(uniq), R, n_factors), dtype=bool)
    M = np.zeros((len(uniq), R), dtype=bool)
    rater = np.full((len(uniq), R), -1, dtype=np.int64)
    row = np.full((len(uniq), R), -1, dtype=np.int64)
    X[inverse, slot] = flags[order]
    M[inverse, slot] = True
    rater[inverse, slot] = rater_ids[order]
    row[inverse, slot] = order
    return Packed(uniq, X, M, rater, row)


def binary_table(X: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(n, R, F) answers -> (F, n, 2) count tables [no, yes] per factor."""
    yes = (X & M[:, :, None]).sum(axis=1)  # (n, F)
    total = M.sum(axis=1)[:, None]  # (n, 1)
    return np.stack([total - yes, yes], axis=-1).transpose(1, 0, 2).astype(np.float64)


# --- Fleiss' kappa ------------------------------------------------------------------------


def fleiss_kappa(table: np.ndarray) -> np.ndarray | float:
    """Fleiss' kappa of a count table (..., n_items, n_categories).

    Items may have different numbers of raters (>= 2): the per-item agreement P_i uses its own
    n_i and the category shares are pooled over all ratings. With a constant number of raters
    this is exactly Fleiss (1971). NaN when chance agreement is 1 (every rating in one category).
    """
    t = np.asarray(table, dtype=np.float64)
    n_i = t.sum(axis=-1)
    P_i = ((t * t).sum(axis=-1) - n_i) / (n_i * (n_i - 1))
    P_bar = P_i.mean(axis=-1)
    p_j = t.sum(axis=-2) / n_i.sum(axis=-1)[..., None]
    P_e = (p_j * p_j).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(np.isclose(P_e, 1.0), np.nan, (P_bar - P_e) / (1.0 - P_e))
    return kappa if np.ndim(kappa) else float(kappa)


def raw_agreement(table: np.ndarray) -> np.ndarray | float:
    """Mean over items of the share of agreeing rater pairs (Fleiss' P-bar)."""
    t = np.asarray(table, dtype=np.float64)
    n_i = t.sum(axis=-1)
    P = (((t * t).sum(axis=-1) - n_i) / (n_i * (n_i - 1))).mean(axis=-1)
    return P if np.ndim(P) else float(P)


# --- Krippendorff's alpha (nominal; binary is nominal with two values) ---------------------


def krippendorff_alpha_nominal(table: np.ndarray) -> np.ndarray | float:
    """Krippendorff's alpha, nominal metric, from value counts (..., n_units, n_values).

    Coincidences o_ck = sum_u (n_uc n_uk - [c=k] n_uc) / (m_u - 1) over units with m_u >= 2
    pairable values; alpha = 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k.
    """
    t = np.asarray(table, dtype=np.float64)
    m_u = t.sum(axis=-1)
    pairable = m_u >= 2
    w = np.where(pairable, 1.0 / np.where(pairable, m_u - 1, 1.0), 0.0)  # (..., n)
    # Only the diagonal of o is needed: sum_{c!=k} o_ck = n - trace(o).
    diag = ((t * t - t) * w[..., None]).sum(axis=-2)  # (..., C)
    n_c = (t * pairable[..., None]).sum(axis=-2)  # marginals of o equal the pairable value counts
    n = n_c.sum(axis=-1)
    disagree_obs = n - diag.sum(axis=-1)
    disagree_exp = (n * n - (n_c * n_c).sum(axis=-1)) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(disagree_exp == 0, np.nan, 1.0 - disagree_obs / disagree_exp)
    return alpha if np.ndim(alpha) else float(alpha)


# --- Set agreement (the whole multi-label answer) -----------------------------------------


def set_agreement(X: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item mean pairwise Jaccard and MASI agreement of the ticked-factor sets.

    Two empty sets agree fully (both said nothing differs). MASI = Jaccard x monotonicity,
    monotonicity 1 (equal), 2/3 (one contains the other), 1/3 (overlap), 0 (disjoint).
    The loop runs over slot pairs (R*(R-1)/2, R = most answers on one item), not over rows.
    """
    n, R = M.shape
    jac_sum = np.zeros(n)
    masi_sum = np.zeros(n)
    pairs = np.zeros(n)
    for a in range(R):
        for b in range(a + 1, R):
            valid = M[:, a] & M[:, b]
            A, B = X[:, a], X[:, b]
            inter = (A & B).sum(-1)
            union = (A | B).sum(-1)
            size_a, size_b = A.sum(-1), B.sum(-1)
            jac = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
            mono = np.select(
                [inter == union, (inter == size_a) | (inter == size_b), inter > 0], [1.0, 2 / 3, 1 / 3], 0.0
            )
            jac_sum += np.where(valid, jac, 0.0)
            masi_sum += np.where(valid, jac * mono, 0.0)
            pairs += valid
    with np.errstate(divide="ignore", invalid="ignore"):
        return jac_sum / pairs, masi_sum / pairs


# --- Bootstrap ------------------------------------------------------------------------------


def bootstrap_ci(
    table: np.ndarray, stat, *, n_boot: int = 500, level: float = 0.95, rng: np.random.Generator | None = None
) -> tuple[float, float]:
    """Percentile bootstrap CI of `stat(count table)`, resampling items; all replicates in one call."""
    t = np.asarray(table, dtype=np.float64)
    n = t.shape[-2]
    if n < 2:
        return (float("nan"), float("nan"))
    rng = rng or np.random.default_rng(0)
    idx = rng.integers(0, n, size=(n_boot, n))
    reps = np.asarray(stat(t[idx]), dtype=np.float64)
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(reps, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def bootstrap_mean_ci(
    values: np.ndarray, *, n_boot: int = 500, level: float = 0.95, rng: np.random.Generator | None = None
) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size < 2:
        return (float("nan"), float("nan"))
    rng = rng or np.random.default_rng(0)
    reps = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.percentile(reps, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


# --- Per-factor report ----------------------------------------------------------------------


def _f(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else round(x, 4)


# --- Bootstrap of the binary per-factor figures through item sums ---------------------------
#
# Fleiss' kappa, Krippendorff's alpha and raw agreement of a binary count table are functions
# of a few *sums over items* (of P_i, of yes and total counts, of the coincidence diagonal).
# A bootstrap replicate is a multiset of items, i.e. a vector of resample counts c (how often
# each item was drawn); its sums are c @ per-item features. So every replicate of every factor
# and every statistic comes from one matrix product C (B x n) @ features (n x F*7), instead of
# materialising B resampled tables per factor and statistic.

_FEATURES = 7  # P_i, yes_i, n_i, diag_no_i, diag_yes_i, pairable_no_i, pairable_yes_i


def binary_item_features(tables: np.ndarray) -> np.ndarray:
    """(F, n, 2) count tables -> (n, F, 7) per-item features (items with >= 2 answers)."""
    t = np.asarray(tables, dtype=np.float64)
    n_i = t.sum(-1)
    P_i = ((t * t).sum(-1) - n_i) / (n_i * (n_i - 1))
    w = 1.0 / (n_i - 1)
    diag = (t * t - t) * w[..., None]
    feats = np.stack([P_i, t[..., 1], n_i, diag[..., 0], diag[..., 1], t[..., 0], t[..., 1]], axis=-1)
    return feats.transpose(1, 0, 2)


def stats_from_sums(S: np.ndarray, n_items: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 7) feature sums (and the number of items drawn) -> (kappa, alpha, raw agreement)."""
    sum_P, yes, n, d0, d1, c0, c1 = np.moveaxis(S, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = sum_P / n_items
        p = yes / n
        pe = p * p + (1 - p) * (1 - p)
        kappa = np.where(np.isclose(pe, 1.0), np.nan, (raw - pe) / (1 - pe))
        nn = c0 + c1
        d_e = (nn * nn - c0 * c0 - c1 * c1) / (nn - 1)
        alpha = np.where(d_e == 0, np.nan, 1 - (nn - d0 - d1) / d_e)
    return kappa, alpha, raw


def _percentiles(reps: np.ndarray, level: float) -> np.ndarray:
    """Percentile CI along axis 0, ignoring NaN replicates (a replicate where everybody agreed on
    one value has no defined kappa); (2, ...). All-NaN columns give NaN without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(reps, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)


def per_factor_agreement(
    X: np.ndarray,
    M: np.ndarray,
    factor_keys: list[str] | tuple[str, ...],
    *,
    n_boot: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> list[dict]:
    """Fleiss' kappa, Krippendorff's alpha and raw agreement per factor with percentile bootstrap CIs.

    Only items with at least two answers count (the overlap items). All factors, statistics and
    replicates are computed together (see the comment above binary_item_features).
    """
    keep = M.sum(axis=1) >= 2
    X, M = X[keep], M[keep]
    n = int(X.shape[0])
    F = len(factor_keys)
    if n == 0:
        return [
            {
                "factor": key,
                "n_items": 0,
                "fleiss_kappa": None,
                "kappa_ci": [None, None],
                "alpha": None,
                "alpha_ci": [None, None],
                "raw_agreement": None,
                "raw_ci": [None, None],
                "positive_rate": None,
            }
            for key in factor_keys
        ]
    tables = binary_table(X, M)  # (F, n, 2)
    feats = binary_item_features(tables)  # (n, F, 7)
    point = stats_from_sums(feats.sum(axis=0), n)  # each (F,)
    if n >= 2 and n_boot > 0:
        rng = np.random.default_rng(seed)
        C = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # (B, n) resample counts
        S = (C @ feats.reshape(n, F * _FEATURES)).reshape(n_boot, F, _FEATURES)
        cis = [_percentiles(r, level) for r in stats_from_sums(S, n)]  # each (2, F)
    else:
        cis = [np.full((2, F), np.nan)] * 3
    out = []
    for f, key in enumerate(factor_keys):
        t = tables[f]
        out.append(
            {
                "factor": key,
                "n_items": n,
                "fleiss_kappa": _f(point[0][f]),
                "kappa_ci": [_f(cis[0][0, f]), _f(cis[0][1, f])],
                "alpha": _f(point[1][f]),
                "alpha_ci": [_f(cis[1][0, f]), _f(cis[1][1, f])],
                "raw_agreement": _f(point[2][f]),
                "raw_ci": [_f(cis[2][0, f]), _f(cis[2][1, f])],
                "positive_rate": _f(t[:, 1].sum() / t.sum()),
            }
        )
    return out


def set_agreement_summary(X: np.ndarray, M: np.ndarray, *, n_boot: int = 500, seed: int = 0) -> dict:
    keep = M.sum(axis=1) >= 2
    jac, masi = set_agreement(X[keep], M[keep])
    rng = np.random.default_rng(seed)
    return {
        "n_items": int(keep.sum()),
        "jaccard": _f(np.nanmean(jac)) if jac.size else None,
        "jaccard_ci": [_f(v) for v in bootstrap_mean_ci(jac, n_boot=n_boot, rng=rng)],
        "masi": _f(np.nanmean(masi)) if masi.size else None,
        "masi_ci": [_f(v) for v in bootstrap_mean_ci(masi, n_boot=n_boot, rng=rng)],
    }


# --- Consensus -----------------------------------------------------------------------------


def consensus_votes(votes: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-factor consensus of one item's answers `votes (m, F)`.

    A factor is settled when the agreeing share is above `threshold` (0.5 = strict majority)
    and is a strict majority; otherwise (ties, no qualified majority) it is undecided.
    Returns (selected bool (F,), undecided bool (F,)).
    """
    v = np.asarray(votes, dtype=bool)
    share = v.mean(axis=0)
    yes = (share > threshold) & (share > 0.5)
    no = ((1 - share) > threshold) & ((1 - share) > 0.5)
    return yes, ~(yes | no)


# --- Per-annotator figures ------------------------------------------------------------------


def cohen_kappa_by_group(group: np.ndarray, a: np.ndarray, b: np.ndarray, n_groups: int) -> np.ndarray:
    """Cohen's kappa of a vs b within each group (rows (N, F) pooled over factors), via bincount."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    g = np.repeat(np.asarray(group), a.shape[1]) if a.ndim == 2 else np.asarray(group)
    a, b = a.ravel(), b.ravel()
    total = np.bincount(g, minlength=n_groups).astype(float)
    agree = np.bincount(g, weights=(a == b), minlength=n_groups)
    pa = np.bincount(g, weights=a, minlength=n_groups)
    pb = np.bincount(g, weights=b, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        po, pa, pb = agree / total, pa / total, pb / total
        pe = pa * pb + (1 - pa) * (1 - pb)
        return np.where(np.isclose(pe, 1.0) | (total == 0), np.nan, (po - pe) / (1 - pe))


def grouped_median(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of `values` within each group (NaN values dropped; NaN for empty groups)."""
    group = np.asarray(group)
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    group, values = group[ok], values[ok]
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = starts + (counts - 1) // 2
    hi = starts + counts // 2
    out[has] = (v[lo[has]] + v[hi[has]]) / 2
    return out


def drift_by_group(group: np.ndarray, times: np.ndarray, flags: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group and factor: tick rate of the later half of the group's answers minus the earlier half.

    Halves are split by time rank within the group; groups with fewer than 4 answers get NaN.
    Returns (n_groups, F).
    """
    group = np.asarray(group)
    flags = np.asarray(flags, dtype=np.float64)
    F = flags.shape[1]
    out = np.full((n_groups, F), np.nan)
    if group.size == 0:
        return out
    order = np.lexsort((np.asarray(times), group))
    g, fl = group[order], flags[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(g.size) - starts[g]
    late = rank >= counts[g] / 2
    idx = g * 2 + late
    sums = np.zeros((n_groups * 2, F))
    np.add.at(sums, idx, fl)
    n = np.bincount(idx, minlength=n_groups * 2).astype(float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = (sums / n).reshape(n_groups, 2, F)
    enough = counts >= 4
    out[enough] = rates[enough, 1] - rates[enough, 0]
    return out
