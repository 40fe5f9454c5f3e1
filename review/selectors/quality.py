"""The quality report (metrics.py does the maths) and the review counts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    F,
    Q,
    QuerySet,
    Sum,
    When,
    Window,
)
from django.db.models.functions import RowNumber

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Annotation, AnnotationSource
from review import metrics
from review.models import (
    ReviewAction,
    ReviewDecision,
)

# --- quality report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityFilter:
    dataset_id: int | None = None
    campaign_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def _answers(flt: QualityFilter) -> QuerySet[Annotation]:
    qs = Annotation.objects.filter(source=AnnotationSource.USER)
    if flt.dataset_id:
        qs = qs.filter(image__dataset_id=flt.dataset_id)
    if flt.campaign_id:
        from annotator.models import CampaignItem

        qs = qs.filter(image_id__in=CampaignItem.objects.filter(campaign_id=flt.campaign_id).values("image_id"))
    if flt.date_from:
        qs = qs.filter(created_at__date__gte=flt.date_from)
    if flt.date_to:
        qs = qs.filter(created_at__date__lte=flt.date_to)
    return qs


def quality_report(flt: QualityFilter | None = None, *, n_boot: int = 500) -> dict:
    """Agreement per factor (overall and per meta-label), set agreement, and per-annotator figures.

    The rows are fetched once as arrays; every figure is computed vectorised (metrics.py).
    Every annotator answer counts, superseded ones included (they are the original answers the
    consensus was built from).
    """
    from annotator.selectors import gold_accuracy_by_annotator

    flt = flt or QualityFilter()
    # The database numbers each annotator's answers in time order (for drift); the rows come
    # back as tuples and become column arrays without a per-row Python loop.
    rows = list(
        _answers(flt)
        .annotate(_order=Window(RowNumber(), partition_by=[F("annotator_id")], order_by=[F("created_at"), F("id")]))
        .values_list(
            "image_id", "annotator_id", "_order", "time_on_task_ms", "image__image_class__meta_label", *FACTOR_KEYS
        )
    )
    n_rows = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * (5 + len(FACTOR_KEYS))
    image_ids = np.array(cols[0], dtype=np.int64)
    annotator_ids = np.array(cols[1], dtype=np.int64)
    time_rank = np.array(cols[2], dtype=np.float64)
    seconds = np.array(cols[3], dtype=np.float64) / 1000  # NULL (None) becomes NaN
    meta = np.array(cols[4], dtype=object)
    flags = np.array(cols[5:], dtype=bool).T.reshape(n_rows, len(FACTOR_KEYS))

    packed = metrics.pack_ratings(image_ids, annotator_ids, flags)
    X, M = packed.X, packed.M
    report: dict = {
        "n_answers": n_rows,
        "n_images": int(len(packed.item_ids)),
        "n_overlap_images": int((M.sum(axis=1) >= 2).sum()) if n_rows else 0,
        "factors": metrics.per_factor_agreement(X, M, FACTOR_KEYS, n_boot=n_boot) if n_rows else [],
        "set_agreement": metrics.set_agreement_summary(X, M, n_boot=n_boot) if n_rows else {},
    }

    # Breakdown by class meta-label (item's meta-label = its first answer's class meta-label).
    by_meta = []
    if n_rows:
        item_meta = meta[packed.row[:, 0]]
        overlap = M.sum(axis=1) >= 2
        for label in META_LABELS:  # 17 groups, each vectorised
            sel = (item_meta == label) & overlap
            if sel.sum() >= 2:
                by_meta.append(
                    {
                        "meta_label": label,
                        "n_items": int(sel.sum()),
                        "factors": metrics.per_factor_agreement(
                            X[sel], M[sel], FACTOR_KEYS, n_boot=max(100, n_boot // 4)
                        ),
                    }
                )
    report["by_meta_label"] = by_meta

    # Per annotator.
    users_arr, group = np.unique(annotator_ids, return_inverse=True)
    users = users_arr.tolist()
    idx = {u: i for i, u in enumerate(users)}
    n_users = len(users)
    per_annotator: list[dict] = []
    if n_users:
        # The reference for each answer: the image's adjudicated consensus when it has one, else
        # the strict majority of the *other* answers (leave-one-out, so an annotator is not
        # compared with a majority that includes their own vote; with two annotators this is
        # plain pairwise agreement). Ties among the others count as "not ticked".
        item_of_row = np.searchsorted(packed.item_ids, image_ids)
        yes_total = (X & M[:, :, None]).sum(axis=1)  # (items, F)
        n_total = M.sum(axis=1)  # (items,)
        others_yes = yes_total[item_of_row] - flags
        others_n = (n_total[item_of_row] - 1)[:, None]
        reference = others_yes * 2 > others_n  # (rows, F)
        stored = list(
            Annotation.objects.filter(
                source=AnnotationSource.CONSENSUS, image_id__in=packed.item_ids.tolist()
            ).values_list("image_id", *FACTOR_KEYS)
        )
        if stored:
            s_ids = np.array([r[0] for r in stored])
            s_flags = np.array([r[1:] for r in stored], dtype=bool)
            by_id = np.argsort(s_ids)
            s_ids, s_flags = s_ids[by_id], s_flags[by_id]
            pos = np.clip(np.searchsorted(s_ids, image_ids), 0, len(s_ids) - 1)
            has = s_ids[pos] == image_ids
            reference[has] = s_flags[pos[has]]
        in_overlap = n_total[item_of_row] >= 2
        g_o = group[in_overlap]
        cons_rows = reference[in_overlap]
        kappa = metrics.cohen_kappa_by_group(g_o, flags[in_overlap], cons_rows, n_users)
        agree = np.bincount(
            np.repeat(g_o, len(FACTOR_KEYS)), weights=(flags[in_overlap] == cons_rows).ravel(), minlength=n_users
        )
        n_overlap = np.bincount(g_o, minlength=n_users)
        n_all = np.bincount(group, minlength=n_users)
        med = metrics.grouped_median(group, seconds, n_users)
        drift = metrics.drift_by_group(group, time_rank, flags, n_users)
        gold = gold_accuracy_by_annotator(user_ids=users)
        decisions = {
            r["annotation__annotator_id"]: r
            for r in ReviewDecision.objects.filter(annotation__annotator_id__in=users)
            .values("annotation__annotator_id")
            .annotate(n=Count("id"), rejected=Sum(Case(When(action=ReviewAction.REJECT, then=1), default=0)))
        }
        names = dict(get_user_model().objects.filter(pk__in=users).values_list("pk", "username"))
        for u, i in idx.items():
            d = drift[i]
            worst = int(np.nanargmax(np.abs(d))) if not np.all(np.isnan(d)) else None
            dec = decisions.get(u)
            per_annotator.append(
                {
                    "annotator_id": u,
                    "username": names.get(u, str(u)),
                    "n_answers": int(n_all[i]),
                    "n_overlap_answers": int(n_overlap[i]),
                    "kappa_vs_consensus": metrics._f(kappa[i]),
                    "agreement_vs_consensus": metrics._f(agree[i] / (n_overlap[i] * len(FACTOR_KEYS)))
                    if n_overlap[i]
                    else None,
                    "median_seconds": metrics._f(med[i]),
                    "gold_accuracy": None if gold.get(u) is None else round(float(gold[u]), 4),
                    "n_reviewed": int(dec["n"]) if dec else 0,
                    "rejection_rate": round(dec["rejected"] / dec["n"], 4) if dec and dec["n"] else None,
                    "drift": {k: metrics._f(v) for k, v in zip(FACTOR_KEYS, d, strict=True)},
                    "max_drift_factor": FACTOR_KEYS[worst] if worst is not None else None,
                    "max_drift": metrics._f(d[worst]) if worst is not None else None,
                }
            )
    report["annotators"] = per_annotator
    return report


def review_counts() -> dict[str, int]:
    """Small numbers for the queue header."""
    return ReviewDecision.objects.aggregate(
        accepted=Count("id", filter=Q(action=ReviewAction.ACCEPT)),
        rejected=Count("id", filter=Q(action=ReviewAction.REJECT)),
        corrected=Count("id", filter=Q(action=ReviewAction.CORRECT)),
    )
