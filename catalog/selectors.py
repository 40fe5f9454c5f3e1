"""Reads. Functions return querysets or plain data computed in the database."""

from __future__ import annotations

from itertools import combinations

from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, RowNumber

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Dataset, Image, ImageClass


def _count_of(model, **outer) -> Subquery:
    return Subquery(
        model.objects.filter(**{k: OuterRef(v) for k, v in outer.items()})
        .order_by()
        .values(*outer)
        .annotate(n=Count("id"))
        .values("n")[:1]
    )


def dataset_summaries() -> QuerySet[Dataset]:
    # One correlated subquery per count: joining images and classes in one query would build
    # images x classes rows (60 million for ImageNet-X) before counting them.
    return Dataset.objects.annotate(
        n_images=Coalesce(_count_of(Image, dataset_id="pk"), 0),
        n_classes=Coalesce(_count_of(ImageClass, dataset_id="pk"), 0),
        n_annotations=Coalesce(_count_of(Annotation, image__dataset_id="pk"), 0),
    ).order_by("slug")


def factor_counts(annotations: QuerySet[Annotation]) -> dict[str, int]:
    """Number of annotations per factor, counted by the database in one query."""
    return annotations.aggregate(**{k: Count("id", filter=Q(**{k: True})) for k in FACTOR_KEYS})


def factor_pair_counts(annotations: QuerySet[Annotation]) -> dict[tuple[str, str], int]:
    """Number of annotations with both factors selected, for all 120 pairs, in one query."""
    pairs = list(combinations(FACTOR_KEYS, 2))
    row = annotations.aggregate(**{f"{a}__{b}": Count("id", filter=Q(**{a: True, b: True})) for a, b in pairs})
    return {(a, b): row[f"{a}__{b}"] for a, b in pairs}


# Priority of an annotation as an image's final answer (lower wins). The rule (curation and
# exports read it): an adjudicated consensus, else a reviewer-accepted or -corrected answer,
# else the single submitted answer of an image annotated once, else the imported record.
_FINAL_PRIORITY = Case(
    When(source="consensus", then=Value(0)),
    When(source="user", status__in=["accepted", "corrected"], then=Value(1)),
    When(source="user", status="submitted", then=Value(2)),
    When(source="imported", then=Value(3)),
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
    qs = Annotation.objects.filter(image__dataset_id=dataset_id).exclude(status__in=["rejected", "superseded"])
    if split:
        qs = qs.filter(image__split=split)
    if image_ids is not None:
        qs = qs.filter(image_id__in=image_ids)
    user_answers = (
        Annotation.objects.filter(image_id=OuterRef("image_id"), source="user")
        .exclude(status="superseded")
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
