"""A batch of models -> one JSON-ready report per model (what an Evaluation stores). No Django."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from catalog.factors import FACTOR_KEYS, META_LABELS
from evaluation import breakdown, metrics, stats
from evaluation.labels import LabelSet

METHODS = {
    "accuracy_interval": "Wilson score, 95 %",
    "error_ratio_interval": "delta method on log(error ratio), factor vs other images as independent binomials, 95 %",
    "factor_test": "two-proportion z-test of the error rate, factor vs the other images; Holm across the 16 factors",
    "comparison": "McNemar (exact below 25 discordant pairs), paired Wald interval of the accuracy difference",
    "groups": "Alexander-Govern (scipy.stats.alexandergovern)",
}
CORRECTED_NOTE = (
    "Corrected defaults (not the toolkit's): images with an empty ReaL label set are left out of ReaL "
    "accuracy instead of counting as wrong for every model; the meta-label `other` (278 unrelated classes) "
    "is not a match between two different classes."
)
TOOLKIT_NOTE = (
    "Toolkit-compatible: numbers reproduce imagenet_x.get_factor_accuracies + error_ratio exactly, "
    "including its treatment of empty ReaL label sets and of the meta-label `other`."
)


def num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _kind_block(
    labels: LabelSet, pred: np.ndarray, kind: str, *, toolkit: bool, k_worst: int, few: int, by_meta: bool
) -> tuple[list[dict], np.ndarray, np.ndarray, metrics.GroupedCounts]:
    correct, valid = metrics.correctness(labels, pred, kind, toolkit=toolkit)
    c = metrics.grouped_counts(correct, valid, labels, by_meta=by_meta)
    if toolkit:
        table = metrics.toolkit_table(c)
        acc = np.stack([table[k] for k in FACTOR_KEYS], axis=1)
        average = table["average"]
        er = np.stack([metrics.error_ratio(table)[k] for k in FACTOR_KEYS], axis=1)
    else:
        acc, average, er = c.accuracy, c.average, c.error_ratio
    lo, hi = stats.wilson(c.k, c.n)
    olo, ohi = stats.wilson(c.correct, c.total)
    err_f, err_all = c.n - c.k, c.total - c.correct
    elo, ehi = stats.error_ratio_interval(err_f, c.n, err_all[:, None], c.total[:, None])
    p = stats.factor_vs_rest(err_f, c.n, err_all[:, None], c.total[:, None])
    p_holm = stats.holm(p)
    worst_acc, worst_cls = metrics.worst_k_classes(labels, correct, valid, k_worst, counts=c)
    blocks = []
    for i in range(pred.shape[0]):
        factors = {}
        for j, key in enumerate(FACTOR_KEYS):
            factors[key] = {
                "n": int(c.n[i, j]),
                "correct": int(c.k[i, j]),
                "accuracy": num(acc[i, j]),
                "ci": [num(lo[i, j]), num(hi[i, j])],
                "error_ratio": num(er[i, j]),
                "error_ratio_ci": [num(elo[i, j]), num(ehi[i, j])],
                "p": num(p[i, j]),
                "p_holm": num(p_holm[i, j]),
                "significant": bool(p_holm[i, j] < 0.05) if not math.isnan(p_holm[i, j]) else False,
                "few_images": bool(c.n[i, j] < few),
            }
        ranked = [k for k in FACTOR_KEYS if factors[k]["accuracy"] is not None]
        worst = min(ranked, key=lambda k: factors[k]["accuracy"]) if ranked else None
        blocks.append(
            {
                "overall": {
                    "n": int(c.total[i]),
                    "correct": int(c.correct[i]),
                    "accuracy": num(average[i]),
                    "ci": [num(olo[i]), num(ohi[i])],
                },
                "factors": factors,
                "worst_factor": worst,
                "worst_factor_accuracy": factors[worst]["accuracy"] if worst else None,
                f"worst_{k_worst}_classes": num(worst_acc[i]),
                "worst_classes": worst_cls[i, :10].tolist(),
            }
        )
    return blocks, correct, valid, c


# One BLAS thread: the products are small (models x 46k x 305) and a worker shares its cores with
# other workers; OpenBLAS's threads spinning on an oversubscribed machine made them 20x slower.
BLAS_THREADS = 1


def evaluate_batch(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        return [json_safe(r) for r in _evaluate_batch(*args, **kwargs)]


def json_safe(x: Any) -> Any:
    """NaN and infinity (undefined ratios) become None: the stored JSON must be valid JSON."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def _evaluate_batch(
    labels: LabelSet,
    aligned: list[metrics.Aligned],
    *,
    toolkit: bool = False,
    primary: str = "class",
    k_worst: int = 100,
    few: int = stats.FEW_IMAGES,
    details: bool = True,
) -> list[dict[str, Any]]:
    """Every stored number of every model: all correctness kinds the labels allow, and for the
    primary kind the meta-label x factor table, prevalence shift, calibration and top-5."""
    pred, prob, c5 = metrics.stack(aligned)
    kinds = [k for k in metrics.CORRECTNESS if k != "real_class" or labels.real_keys is not None]
    reports: list[dict[str, Any]] = [
        {
            "mode": "toolkit" if toolkit else "corrected",
            "note": TOOLKIT_NOTE if toolkit else CORRECTED_NOTE,
            "methods": METHODS,
            "primary": primary,
            "coverage": {
                "annotated": labels.n,
                "predictions": a.n_predictions,
                "matched": a.n_matched,
                "unknown_file_names": a.n_unknown,
                "annotated_without_prediction": labels.n - a.n_matched,
                "share": a.n_matched / labels.n if labels.n else 0.0,
            },
            "kinds": {},
        }
        for a in aligned
    ]
    prim_cv = None
    for kind in kinds:
        blocks, correct, valid, counts = _kind_block(
            labels, pred, kind, toolkit=toolkit, k_worst=k_worst, few=few, by_meta=kind == primary
        )
        for r, b in zip(reports, blocks, strict=True):
            r["kinds"][kind] = b
        if kind == primary:
            prim_cv = (correct, valid, counts)
    if prim_cv is None:
        raise ValueError(f"correctness {primary!r} is not available for these labels")
    if not details:
        return reports
    correct, valid, pc = prim_cv
    ml = {"n": pc.ml_n, "k": pc.ml_k, "total": pc.ml_total, "correct": pc.ml_correct}
    ml_er = breakdown.metalabel_error_ratios(ml)
    eces = breakdown.ece_batch(correct, valid, prob, labels.factors) if prob is not None else None
    cls_correct, cls_valid = metrics.correctness(labels, pred, "class", toolkit=True)
    shift = breakdown.prevalence_shift(cls_correct, cls_valid, labels.factors)
    top5 = None
    if c5 is not None:
        c5v = c5 & cls_valid
        top5 = metrics.factor_counts(c5v, cls_valid, labels.factors)
    for i, r in enumerate(reports):
        r["metalabel_factor"] = {
            "n": ml["n"][i].tolist(),
            "error_ratio": [[num(x) for x in row] for row in ml_er[i]],
            "accuracy": [num(x) for x in (ml["correct"][i] / np.maximum(ml["total"][i], 1))],
            "images": ml["total"][i].tolist(),
            "meta_labels": list(META_LABELS),
            "table4": breakdown.robust_susceptible(ml_er[i], ml["n"][i], min_images=few),
        }
        r["prevalence_shift"] = {k: num(shift[i, j]) for j, k in enumerate(FACTOR_KEYS)}
        if prob is not None:
            r["calibration"] = {
                "ece": eces[i],
                "reliability": breakdown.reliability(correct[i][valid[i]].astype(float), prob[i][valid[i]]),
            }
        if top5 is not None:
            lo, hi = stats.wilson(top5.correct[i], top5.total[i])
            r["top5"] = {
                "overall": {"n": int(top5.total[i]), "accuracy": num(top5.average[i]), "ci": [num(lo), num(hi)]},
                "factors": {k: num(top5.accuracy[i, j]) for j, k in enumerate(FACTOR_KEYS)},
            }
    return reports


def compare_pair(
    labels: LabelSet, a: metrics.Aligned, b: metrics.Aligned, *, kind: str = "class", toolkit: bool = False
) -> dict[str, Any]:
    """Two models per factor, on the images both predicted: McNemar and the accuracy difference."""
    pred = np.stack([a.pred, b.pred])
    correct, valid = metrics.correctness(labels, pred, kind, toolkit=toolkit)
    both = valid[0] & valid[1]
    ca, cb = correct[0] & both, correct[1] & both
    f = np.concatenate([np.ones((labels.n, 1), bool), labels.factors], axis=1).astype(np.float32)
    bb = np.rint((ca & ~cb).astype(np.float32) @ f)
    cc = np.rint((~ca & cb & both).astype(np.float32) @ f)
    n = np.rint(both.astype(np.float32) @ f)
    p = stats.mcnemar(bb, cc)
    p_holm = np.concatenate([[p[0]], stats.holm(p[1:])])
    d, lo, hi = stats.paired_difference(bb, cc, n)
    acc_a = np.rint(ca.astype(np.float32) @ f).astype(np.float64) / np.maximum(n, 1)
    acc_b = np.rint(cb.astype(np.float32) @ f).astype(np.float64) / np.maximum(n, 1)
    rows = {}
    for j, key in enumerate(["overall", *FACTOR_KEYS]):
        rows[key] = {
            "n": int(n[j]),
            "a_only": int(bb[j]),
            "b_only": int(cc[j]),
            "accuracy_a": num(acc_a[j]) if n[j] else None,
            "accuracy_b": num(acc_b[j]) if n[j] else None,
            "difference": num(d[j]),
            "ci": [num(lo[j]), num(hi[j])],
            "p": num(p[j]),
            "p_holm": num(p_holm[j]),
            "significant": bool(p_holm[j] < 0.05),
        }
    return json_safe({"kind": kind, "mode": "toolkit" if toolkit else "corrected", "factors": rows})
