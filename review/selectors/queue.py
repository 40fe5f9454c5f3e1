"""Multi-annotated images and the audit queue (what a reviewer sees next)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Mod

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, Image
from review.models import (
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
