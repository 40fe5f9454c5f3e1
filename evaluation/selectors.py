"""Reads: which evaluations a user sees, the zoo around an evaluation, the drill-down to images."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import Q, QuerySet

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Image, ImageClass
from evaluation.models import Evaluation, EvaluationStatus, ZooModel
from infra.errors import DomainError, NotFound
from infra.roles import Role, has_role

PAGE_SIZE = 48


def evaluations_for(user: Any) -> QuerySet[Evaluation]:
    """An evaluation is visible to its owner and to maintainers; to every researcher once shared."""
    qs = Evaluation.objects.select_related("dataset", "release", "owner").defer("metrics")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if has_role(user, Role.MAINTAINER):
        return qs
    if has_role(user, Role.RESEARCHER):
        return qs.filter(Q(owner=user) | Q(shared=True))
    return qs.filter(owner=user)


def evaluation_for(user: Any, evaluation_id: int, *, with_metrics: bool = True) -> Evaluation:
    qs = evaluations_for(user)
    if with_metrics:
        qs = qs.defer(None)
    ev = qs.filter(pk=evaluation_id).first()
    if ev is None:
        raise NotFound(f"No evaluation {evaluation_id}.")
    return ev


def zoo_models(which_factor: str, correctness: str) -> QuerySet[ZooModel]:
    return ZooModel.objects.filter(which_factor=which_factor, correctness=correctness)


def zoo_context(ev: Evaluation) -> dict[str, Any]:
    """The paper's models around this one: per group the mean error ratio per factor, and every
    model's (overall accuracy, factor accuracies) for the scatter of Figure 4."""
    rows = list(zoo_models(ev.which_factor, ev.correctness).values_list("group", "average", "accuracies"))
    groups: dict[str, list] = {}
    for group, avg, accs in rows:
        groups.setdefault(group, []).append((avg, accs))
    out: dict[str, Any] = {"groups": {}, "n_models": len(rows)}
    for group, items in groups.items():
        avg = np.array([a for a, _ in items], dtype=float)
        acc = np.array([[x.get(k) if x.get(k) is not None else np.nan for k in FACTOR_KEYS] for _, x in items])
        with np.errstate(all="ignore"):
            er = (1 - acc) / (1 - avg)[:, None]
        out["groups"][group] = {
            "n": len(items),
            "average": avg.tolist(),
            "accuracies": acc.tolist(),
            "mean_error_ratio": {k: _num(np.nanmean(er[:, j])) for j, k in enumerate(FACTOR_KEYS)},
            "error_ratios": er,
        }
    prim = ev.primary or {}
    mine = (prim.get("overall") or {}).get("accuracy")
    if mine is not None and rows:
        allavg = np.array([r[1] for r in rows])
        out["accuracy_percentile"] = float((allavg < mine).mean() * 100)
    return out


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def group_tests(zoo: dict[str, Any], *, min_models: int = 5) -> dict[str, Any]:
    """Alexander-Govern per factor: do the zoo's groups differ in error ratio?"""
    from evaluation.stats import alexander_govern, holm

    groups = {g: v["error_ratios"] for g, v in zoo["groups"].items() if v["n"] >= min_models}
    res = {k: alexander_govern({g: er[:, j] for g, er in groups.items()}) for j, k in enumerate(FACTOR_KEYS)}
    p = np.array([[r["pvalue"] if r else np.nan for r in res.values()]])
    adj = holm(p)[0]
    for (_k, r), a in zip(res.items(), adj, strict=True):
        if r:
            r["p_holm"] = _num(a)
    return res


def drilldown(
    ev: Evaluation, *, factor: str = "", meta_label: str = "", wrong_only: bool = False, page: int = 1, q: str = ""
) -> dict[str, Any]:
    """The images behind a number: misclassified first, then by file name; paginated."""
    from evaluation import metrics, services

    if ev.status != EvaluationStatus.DONE:
        raise DomainError("The evaluation is not computed yet.", code="not_ready")
    if factor and factor not in FACTOR_KEYS:
        raise DomainError(f"Unknown factor {factor!r}.", field="factor")
    if meta_label and meta_label not in META_LABELS:
        raise DomainError(f"Unknown meta-label {meta_label!r}.", field="meta_label")
    labels, a = services.aligned_for(ev)
    correct, valid = metrics.correctness(labels, a.pred[None, :], ev.correctness, toolkit=ev.toolkit_compatible)
    correct, valid = correct[0], valid[0]
    sel = valid.copy()
    if factor:
        sel &= labels.factors[:, FACTOR_KEYS.index(factor)]
    if meta_label:
        sel &= labels.meta == META_LABELS.index(meta_label)
    if wrong_only:
        sel &= ~correct
    if q:
        sel &= np.char.find(labels.file_names.astype(str), q) >= 0
    rows = np.flatnonzero(sel)
    order = np.lexsort((labels.file_names[rows], correct[rows]))
    rows = rows[order]
    total = len(rows)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    chunk = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    names = [str(labels.file_names[i]) for i in chunk]
    class_names = dict(ImageClass.objects.filter(dataset=ev.dataset).values_list("index", "name"))
    images = {
        im.file_name: im
        for im in Image.objects.filter(dataset=ev.dataset, file_name__in=names).only("id", "file_name", "relpath")
    }
    items = []
    for i, name in zip(chunk, names, strict=True):
        im = images.get(name)
        items.append(
            {
                "file_name": name,
                "true_class": int(labels.classes[i]),
                "true_name": class_names.get(int(labels.classes[i]), ""),
                "predicted_class": int(a.pred[i]),
                "predicted_name": class_names.get(int(a.pred[i]), ""),
                "correct": bool(correct[i]),
                "probability": None if a.prob is None else _num(a.prob[i]),
                "factors": [k for j, k in enumerate(FACTOR_KEYS) if labels.factors[i, j]],
                "meta_label": META_LABELS[int(labels.meta[i])],
                "justification": "" if labels.justification is None else str(labels.justification[i] or ""),
                "one_word": "" if labels.one_word is None else str(labels.one_word[i] or ""),
                "image_id": im.pk if im and im.relpath else None,
            }
        )
    return {"total": total, "wrong": int((~correct[rows]).sum()), "page": page, "pages": pages, "items": items}


def comparison(a: Evaluation, b: Evaluation) -> dict[str, Any]:
    """Two evaluations on the same labels: McNemar per factor (evaluation.report.compare_pair)."""
    from evaluation import report, services

    same = (a.label_source, a.release_id, a.curation_run_id, a.split, a.which_factor, a.filter_prototypes)
    if same != (b.label_source, b.release_id, b.curation_run_id, b.split, b.which_factor, b.filter_prototypes):
        raise DomainError("Compare two evaluations on the same labels (source, split, factor mode, prototypes).",
                          code="different_labels")  # fmt: skip
    labels, pa_ = services.aligned_for(a)
    _, pb = services.aligned_for(b)
    return report.compare_pair(labels, pa_, pb, kind=a.correctness, toolkit=a.toolkit_compatible)
