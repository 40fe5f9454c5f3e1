"""Reads of the review app: the audit queue, the review context of an image, the audit trail,
annotations returned to their annotator, and the quality report (metrics.py does the maths).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Greatest, Mod, RowNumber

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, Image
from review import metrics
from review.models import (
    AdjudicationRecord,
    AuditEvent,
    AuditSettings,
    ConsistencyFlag,
    ReviewAction,
    ReviewDecision,
)

# --- multi-annotated images -----------------------------------------------------------------


def _live_user_answers() -> QuerySet[Annotation]:
    return Annotation.objects.filter(source=AnnotationSource.USER).exclude(status=AnnotationStatus.SUPERSEDED)


def _planned_subquery():
    from annotator.models import CampaignItem

    return Subquery(
        CampaignItem.objects.filter(image_id=OuterRef("image_id")).order_by("-planned").values("planned")[:1],
        output_field=IntegerField(),
    )


def multi_annotated_images(*, image_ids=None, dataset_id: int | None = None, complete_only: bool = True) -> QuerySet:
    """Images with two or more answers and no consensus yet.

    `complete_only`: only images that have all the answers they need (the campaign's planned
    copies, at least AuditSettings.min_annotations). Full agreement is only final once every
    planned answer is in (a later one may disagree), so auto-acceptance uses complete images;
    a disagreement is a disagreement as soon as two answers differ, so the queue does not wait.
    Rows (dicts): image_id, n, needed, `<factor>_yes` counts, n_disagree (factors without
    unanimity), disagree (bool). Counted by the database in one grouped query.
    """
    cfg = AuditSettings.current()
    qs = _live_user_answers()
    if image_ids is not None:
        qs = qs.filter(image_id__in=image_ids)
    if dataset_id:
        qs = qs.filter(image__dataset_id=dataset_id)
    qs = qs.exclude(Exists(Annotation.objects.filter(image_id=OuterRef("image_id"), source=AnnotationSource.CONSENSUS)))
    yes = {f"{k}_yes": Count("id", filter=Q(**{k: True})) for k in FACTOR_KEYS}
    grouped = (
        qs.values("image_id")
        .annotate(n=Count("id"), **yes)
        .annotate(needed=Greatest(Coalesce(_planned_subquery(), Value(0)), Value(cfg.min_annotations)))
        .filter(n__gte=F("needed") if complete_only else Value(2))
    )
    split = sum(
        (
            Case(When(Q(**{f"{k}_yes__gt": 0}) & Q(**{f"{k}_yes__lt": F("n")}), then=Value(1)), default=Value(0))
            for k in FACTOR_KEYS
        ),
        Value(0),
    )
    return grouped.annotate(
        n_disagree=split, disagree=Case(When(n_disagree__gt=0, then=Value(True)), default=Value(False))
    ).order_by("image_id")


# --- the audit queue --------------------------------------------------------------------------


@dataclass
class QueueItem:
    kind: str  # "flagged" | "resubmitted" | "disagreement" | "sample"
    image: Image
    annotation: Annotation | None = None
    reasons: list[str] = field(default_factory=list)


def annotator_audit_rates(*, user_ids: list[int]) -> dict[int, tuple[float, str]]:
    """Audit sampling rate per annotator and why: the highest applicable of base / new / low gold."""
    from annotator.selectors import gold_accuracy_by_annotator

    cfg = AuditSettings.current()
    counts = dict(
        Annotation.objects.filter(source=AnnotationSource.USER, annotator_id__in=user_ids)
        .values_list("annotator_id")
        .annotate(n=Count("id"))
        .values_list("annotator_id", "n")
    )
    gold = gold_accuracy_by_annotator(user_ids=user_ids)
    out: dict[int, tuple[float, str]] = {}
    for uid in user_ids:  # one entry per annotator (tens), not per annotation
        options = [(cfg.base_rate, f"sampled at the base rate {cfg.base_rate:.0%}")]
        n = counts.get(uid, 0)
        if n < cfg.new_annotator_until:
            options.append(
                (cfg.new_annotator_rate, f"new annotator ({n} annotations): sampled at {cfg.new_annotator_rate:.0%}")
            )
        g = gold.get(uid)
        if g is not None and g < cfg.low_gold_below:
            options.append((cfg.low_gold_rate, f"low gold accuracy {g:.2f}: sampled at {cfg.low_gold_rate:.0%}"))
        out[uid] = max(options, key=lambda o: o[0])
    return out


# Deterministic sampling in the database: a multiplicative hash of the annotation id modulo a
# prime, compared with rate x prime. Stable between requests (the queue does not reshuffle on
# reload) and the seed in AuditSettings picks a different sample.
_HASH_MULT = 2654435761
_HASH_MOD = 10007


def sampled_annotations(*, reviewer, dataset_id: int | None = None) -> tuple[QuerySet[Annotation], dict]:
    cfg = AuditSettings.current()
    multi_images = _live_user_answers().values("image_id").annotate(n=Count("id")).filter(n__gte=2).values("image_id")
    base = (
        Annotation.objects.filter(source=AnnotationSource.USER, status=AnnotationStatus.SUBMITTED)
        .exclude(annotator=reviewer)
        .exclude(image_id__in=multi_images)
    )
    if dataset_id:
        base = base.filter(image__dataset_id=dataset_id)
    user_ids = list(base.values_list("annotator_id", flat=True).distinct().order_by())
    rates = annotator_audit_rates(user_ids=user_ids)
    if not rates:
        return base.none(), rates
    cutoff = Case(
        *(When(annotator_id=uid, then=Value(int(round(rate * _HASH_MOD)))) for uid, (rate, _) in rates.items()),
        default=Value(0),
        output_field=IntegerField(),
    )
    qs = base.annotate(
        _h=Mod(F("id") * _HASH_MULT + cfg.seed * 40503, _HASH_MOD),
        _cut=cutoff,
    ).filter(_h__lt=F("_cut"))
    return qs, rates


def audit_queue(*, reviewer, dataset_id: int | None = None, limit: int = 100) -> list[QueueItem]:
    """What this reviewer should look at, most urgent first.

    1. annotations whose justification disagrees with their ticks (consistency flags), with the reason;
    2. answers revised by their annotator after a rejection;
    3. multi-annotated images whose annotators disagree (adjudication);
    4. annotations sampled per annotator (AuditSettings rates).
    A reviewer never sees their own annotations, nor images they annotated.
    """
    items: list[QueueItem] = []
    flags = (
        ConsistencyFlag.objects.filter(
            annotation__version=F("annotation_version"), annotation__status=AnnotationStatus.SUBMITTED
        )
        .exclude(annotation__annotator=reviewer)
        .select_related("annotation", "annotation__image", "annotation__image__image_class", "annotation__annotator")
        .order_by("annotation_id", "id")
    )
    if dataset_id:
        flags = flags.filter(annotation__image__dataset_id=dataset_id)
    by_ann: dict[int, QueueItem] = {}
    for f in flags[: limit * 4]:
        item = by_ann.get(f.annotation_id)
        if item is None:
            item = by_ann[f.annotation_id] = QueueItem("flagged", f.annotation.image, f.annotation)
            items.append(item)
        item.reasons.append(f.reason)
    # Answers revised after a rejection come back to review (the reviewer asked for the fix),
    # whatever the sampling says; the reason quotes the rejection.
    last_reject = ReviewDecision.objects.filter(annotation_id=OuterRef("pk"), action=ReviewAction.REJECT).order_by(
        "-id"
    )
    resubmitted = (
        Annotation.objects.filter(source=AnnotationSource.USER, status=AnnotationStatus.SUBMITTED)
        .filter(Exists(last_reject))
        .exclude(annotator=reviewer)
        .exclude(pk__in=list(by_ann))
        .annotate(_comment=Subquery(last_reject.values("comment")[:1]))
        .select_related("image", "image__image_class", "annotator")
        .order_by("updated_at", "id")
    )
    if dataset_id:
        resubmitted = resubmitted.filter(image__dataset_id=dataset_id)
    for ann in resubmitted[:limit]:
        items.append(QueueItem("resubmitted", ann.image, ann, [f"revised after a rejection: “{ann._comment}”"]))
    seen_images = {i.image.pk for i in items}

    own_images = Annotation.objects.filter(annotator=reviewer).values("image_id")
    disagreements = (
        multi_annotated_images(dataset_id=dataset_id, complete_only=False)
        .filter(disagree=True)
        .exclude(image_id__in=own_images)
    )
    rows = list(disagreements[:limit])
    images = Image.objects.in_bulk([r["image_id"] for r in rows])
    for r in rows:
        # Not deduplicated against flagged answers: a flagged answer on a disputed image is
        # still audited on its own, and the dispute still needs adjudication.
        if r["image_id"] not in images:
            continue
        split = [k for k in FACTOR_KEYS if 0 < r[f"{k}_yes"] < r["n"]]
        waiting = f" ({r['n']} of {r['needed']} planned answers in)" if r["n"] < r["needed"] else ""
        reason = f"{r['n']} annotators disagree on {', '.join(split)}{waiting}"
        items.append(QueueItem("disagreement", images[r["image_id"]], None, [reason]))
        seen_images.add(r["image_id"])

    sampled, rates = sampled_annotations(reviewer=reviewer, dataset_id=dataset_id)
    for ann in sampled.select_related("image", "image__image_class", "annotator").order_by("created_at", "id")[:limit]:
        if ann.image_id in seen_images:
            continue
        items.append(QueueItem("sample", ann.image, ann, [rates[ann.annotator_id][1]]))
    return items[:limit]


# --- one image ---------------------------------------------------------------------------------


def image_answers(image: Image) -> list[Annotation]:
    """Every annotator's answer for the image (current versions), with decisions and flags prefetched."""
    return list(
        Annotation.objects.filter(image=image, source=AnnotationSource.USER)
        .select_related("annotator")
        .prefetch_related("review_decisions__reviewer", "consistency_flags")
        .order_by("id")
    )


def current_flags(annotation: Annotation) -> list[ConsistencyFlag]:
    return [f for f in annotation.consistency_flags.all() if f.annotation_version == annotation.version]


def consensus_of(image: Image) -> Annotation | None:
    return Annotation.objects.filter(image=image, source=AnnotationSource.CONSENSUS).first()


def adjudication_of(image: Image) -> AdjudicationRecord | None:
    return AdjudicationRecord.objects.filter(image=image).select_related("decided_by").first()


def timeline(image: Image) -> QuerySet[AuditEvent]:
    """The image's audit trail, oldest first."""
    return AuditEvent.objects.filter(image=image).select_related("actor", "annotation").order_by("created_at", "id")


def returned_annotations(*, user) -> QuerySet[Annotation]:
    """The user's rejected annotations with the reviewer's last comment (what the annotator must fix)."""
    last = ReviewDecision.objects.filter(annotation_id=OuterRef("pk"), action=ReviewAction.REJECT).order_by("-id")
    return (
        Annotation.objects.filter(annotator=user, source=AnnotationSource.USER, status=AnnotationStatus.REJECTED)
        .annotate(
            reject_comment=Subquery(last.values("comment")[:1]),
            rejected_by=Subquery(last.values("reviewer__username")[:1]),
        )
        .select_related("image", "image__image_class")
        .order_by("-updated_at")
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


# --- The final answer: review's rule --------------------------------------------------------
# Priority of an annotation as an image's final answer (lower wins). The rule (curation,
# exports and evaluation read it here): an adjudicated consensus, else a reviewer-accepted or -corrected answer,
# else the single submitted answer of an image annotated once, else the imported record.
_FINAL_PRIORITY = Case(
    When(source=AnnotationSource.CONSENSUS, then=Value(0)),
    When(
        source=AnnotationSource.USER,
        status__in=[AnnotationStatus.ACCEPTED, AnnotationStatus.CORRECTED],
        then=Value(1),
    ),
    When(source=AnnotationSource.USER, status=AnnotationStatus.SUBMITTED, then=Value(2)),
    When(source=AnnotationSource.IMPORTED, then=Value(3)),
    default=Value(9),
    output_field=IntegerField(),
)


def final_annotations(
    *, dataset_id: int, split: str | None = None, image_ids: QuerySet | list[int] | None = None
) -> QuerySet[Annotation]:
    """Each image's final annotation (at most one per image), chosen in the database.

    Images annotated by several people (multi-review) have no final answer until a consensus
    or an accepted review exists: their merely submitted answers do not count. Rejected and
    superseded answers never count.
    """
    qs = Annotation.objects.filter(image__dataset_id=dataset_id).exclude(
        status__in=[AnnotationStatus.REJECTED, AnnotationStatus.SUPERSEDED]
    )
    if split:
        qs = qs.filter(image__split=split)
    if image_ids is not None:
        qs = qs.filter(image_id__in=image_ids)
    user_answers = (
        Annotation.objects.filter(image_id=OuterRef("image_id"), source=AnnotationSource.USER)
        .exclude(status=AnnotationStatus.SUPERSEDED)
        .values("image_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    qs = qs.annotate(
        _prio=_FINAL_PRIORITY,
        _n_user=Coalesce(Subquery(user_answers[:1]), 0),
    ).exclude(Q(_prio=2) & Q(_n_user__gt=1))
    ranked = qs.annotate(
        _rank=Window(RowNumber(), partition_by=[F("image_id")], order_by=[F("_prio").asc(), F("id").desc()])
    ).filter(_rank=1)
    return ranked.order_by("image_id")
