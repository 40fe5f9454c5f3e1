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
from django.db.models.functions import Coalesce, Greatest

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, Image
from review.models import (
    AuditSettings,
    ConsistencyFlag,
    ImageTally,
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
    unanimity), disagree (bool). Read from the stored per-image tallies (ImageTally, kept by
    triggers), so a page of it costs the same at 3,000 and at 60,000 images; filter on
    `n_disagree` (> 0 or = 0) rather than `disagree` to use their partial indexes.
    """
    cfg = AuditSettings.current()
    qs = ImageTally.objects.filter(has_consensus=False, n__gte=2)
    if image_ids is not None:
        qs = qs.filter(image_id__in=image_ids)
    if dataset_id:
        qs = qs.filter(image__dataset_id=dataset_id)
    qs = qs.annotate(needed=Greatest(Coalesce(_planned_subquery(), Value(0)), Value(cfg.min_annotations)))
    if complete_only:
        qs = qs.filter(n__gte=F("needed"))
    return (
        qs.annotate(disagree=Case(When(n_disagree__gt=0, then=Value(True)), default=Value(False)))
        .values("image_id", "n", "needed", *(f"{k}_yes" for k in FACTOR_KEYS), "n_disagree", "disagree")
        .order_by("image_id")
    )


def tally_recount(*, image_ids=None) -> dict[int, dict]:
    """Each image's tally counted again from its answers, by the ORM (the triggers' independent
    check, and what review_tally_rebuild writes). Images with no user or consensus answer are
    left out. A scan of every answer: for checks and repairs, not for pages."""
    qs = Annotation.objects.filter(source__in=[AnnotationSource.USER, AnnotationSource.CONSENSUS])
    if image_ids is not None:
        qs = qs.filter(image_id__in=image_ids)
    live = Q(source=AnnotationSource.USER) & ~Q(status=AnnotationStatus.SUPERSEDED)
    rows = qs.values("image_id").annotate(
        n=Count("id", filter=live),
        **{f"{k}_yes": Count("id", filter=live & Q(**{k: True})) for k in FACTOR_KEYS},
        n_consensus=Count("id", filter=Q(source=AnnotationSource.CONSENSUS)),
    )
    out: dict[int, dict] = {}
    for r in rows.order_by("image_id"):
        image_id, n = r.pop("image_id"), r["n"]
        r["n_disagree"] = sum(1 for k in FACTOR_KEYS if 0 < r[f"{k}_yes"] < n)
        r["has_consensus"] = r.pop("n_consensus") > 0
        out[image_id] = r
    return out


# --- the audit queue --------------------------------------------------------------------------


@dataclass
class QueueItem:
    kind: str  # "flagged" | "resubmitted" | "disagreement" | "sample"
    image: Image
    annotation: Annotation | None = None
    reasons: list[str] = field(default_factory=list)


def annotator_audit_rates(*, user_ids) -> dict[int, tuple[float, str]]:
    """Audit sampling rate per annotator and why: the highest applicable of base / new / low gold.

    Whether an annotator is still new needs only their first `new_annotator_until` answers: one
    EXISTS probe per annotator for "has that many", and an exact count for the new ones only,
    so the cost is bounded by the number of people, not by what they have done.
    """
    from django.contrib.auth import get_user_model

    from annotator.selectors import gold_accuracy_by_annotator

    cfg = AuditSettings.current()
    user_ids = list(user_ids)
    until = cfg.new_annotator_until
    answers = Annotation.objects.filter(source=AnnotationSource.USER)
    new_ids: list[int] = []
    if until > 0 and user_ids:
        veteran = Exists(answers.filter(annotator_id=OuterRef("pk")).order_by()[until - 1 : until])
        new_ids = list(
            get_user_model()
            .objects.filter(pk__in=user_ids)
            .annotate(_veteran=veteran)
            .filter(_veteran=False)
            .values_list("pk", flat=True)
        )
    counts = dict(
        answers.filter(annotator_id__in=new_ids)
        .values_list("annotator_id")
        .annotate(n=Count("id"))
        .values_list("annotator_id", "n")
    )
    gold = gold_accuracy_by_annotator(user_ids=user_ids)
    new = set(new_ids)
    out: dict[int, tuple[float, str]] = {}
    for uid in user_ids:  # one entry per annotator (tens), not per annotation
        options = [(cfg.base_rate, f"sampled at the base rate {cfg.base_rate:.0%}")]
        if uid in new:
            n = counts.get(uid, 0)
            options.append(
                (cfg.new_annotator_rate, f"new annotator ({n} annotations): sampled at {cfg.new_annotator_rate:.0%}")
            )
        g = gold.get(uid)
        if g is not None and g < cfg.low_gold_below:
            options.append((cfg.low_gold_rate, f"low gold accuracy {g:.2f}: sampled at {cfg.low_gold_rate:.0%}"))
        out[uid] = max(options, key=lambda o: o[0])
    return out


# Deterministic sampling: a multiplicative hash of the annotation id modulo a prime, compared
# with rate x prime. Stable between requests (the queue does not reshuffle on reload) and the
# seed in AuditSettings picks a different sample. The same formula runs in the database
# (sampled_annotations) and in Python (the queue's page of it): _sample_hash is the one spelling.
_HASH_MULT = 2654435761
_HASH_MOD = 10007


def _sample_hash(annotation_id, seed: int):
    """The sampling hash of an annotation id (an int, or an F() expression for the database)."""
    return (annotation_id * _HASH_MULT + seed * 40503) % _HASH_MOD


def _sample_cutoff(rate: float) -> int:
    return int(round(rate * _HASH_MOD))


def _awaiting_audit(*, reviewer, dataset_id: int | None, exclude_multi: bool = True) -> QuerySet[Annotation]:
    """Submitted answers of others on images with a single live answer (the images with several
    go to adjudication instead). Without `exclude_multi` the caller drops those itself (the
    queue's walk: a filter here would let the planner trade the awaiting-review index for a
    scan and sort of every waiting answer)."""
    base = Annotation.objects.filter(source=AnnotationSource.USER, status=AnnotationStatus.SUBMITTED).exclude(
        annotator=reviewer
    )
    if exclude_multi:
        base = base.exclude(Exists(ImageTally.objects.filter(image_id=OuterRef("image_id"), n__gte=2)))
    if dataset_id:
        base = base.filter(image__dataset_id=dataset_id)
    return base


def sampled_annotations(*, reviewer, dataset_id: int | None = None) -> tuple[QuerySet[Annotation], dict]:
    """The whole audit sample (every sampled answer waiting for review) and the rates used.

    Reads every waiting answer: for batch work (a reviewer team's whole sample, the rehearsal).
    The queue page takes the first of them without that scan (audit_queue).
    """
    cfg = AuditSettings.current()
    base = _awaiting_audit(reviewer=reviewer, dataset_id=dataset_id)
    rates = annotator_audit_rates(user_ids=base.values_list("annotator_id", flat=True).distinct().order_by())
    if not rates:
        return base.none(), rates
    cutoff = Case(
        *(When(annotator_id=uid, then=Value(_sample_cutoff(rate))) for uid, (rate, _) in rates.items()),
        default=Value(0),
        output_field=IntegerField(),
    )
    qs = base.annotate(_h=_sample_hash(F("id"), cfg.seed), _cut=cutoff).filter(_h__lt=F("_cut"))
    return qs, rates


def sample_walk_rows(*, reviewer, dataset_id: int | None) -> QuerySet:
    """The waiting answers oldest first, as (id, annotator, image, created_at, the image's live
    answers): what the queue's sample walks in chunks."""
    live = Subquery(ImageTally.objects.filter(image_id=OuterRef("image_id")).values("n")[:1])
    return (
        _awaiting_audit(reviewer=reviewer, dataset_id=dataset_id, exclude_multi=False)
        .annotate(_live=live)
        .order_by("created_at", "id")
        .values_list("id", "annotator_id", "image_id", "created_at", "_live")
    )


def _sample_page(*, reviewer, dataset_id: int | None, limit: int, skip_images: set[int]) -> list[tuple[int, str]]:
    """The oldest `limit` sampled answers (ids, with the reason), as sampled_annotations picks them.

    Walks the waiting answers oldest first in chunks and applies the hash in Python, learning
    the rate of each annotator as they appear: reads about limit / rate rows whatever the size
    of the campaign.
    """
    seed = AuditSettings.current().seed
    rows = sample_walk_rows(reviewer=reviewer, dataset_id=dataset_id)
    rates: dict[int, tuple[float, str]] = {}
    picked: list[tuple[int, str]] = []
    after = None
    chunk_size = max(200, limit * 5)
    while len(picked) < limit:
        page = (
            rows if after is None else rows.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
        )
        chunk = list(page[:chunk_size])
        unknown = {r[1] for r in chunk} - rates.keys()
        if unknown:
            rates.update(annotator_audit_rates(user_ids=sorted(unknown)))
        for ann_id, uid, image_id, _, n_live in chunk:
            if (n_live or 0) >= 2 or image_id in skip_images:
                continue
            rate, why = rates[uid]
            if _sample_hash(ann_id, seed) < _sample_cutoff(rate):
                picked.append((ann_id, why))
        if len(chunk) < chunk_size:
            break
        after = (chunk[-1][3], chunk[-1][0])
    return picked[:limit]


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
        .filter(n_disagree__gt=0)
        .exclude(image_id__in=own_images)
    )
    rows = list(disagreements[:limit])
    images = Image.objects.select_related("image_class").in_bulk([r["image_id"] for r in rows])
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

    room = limit - len(items)
    if room > 0:
        picked = _sample_page(reviewer=reviewer, dataset_id=dataset_id, limit=room, skip_images=seen_images)
        answers = Annotation.objects.select_related("image", "image__image_class", "annotator").in_bulk(
            [i for i, _ in picked]
        )
        for ann_id, why in picked:
            if ann_id in answers:
                items.append(QueueItem("sample", answers[ann_id].image, answers[ann_id], [why]))
    return items[:limit]
