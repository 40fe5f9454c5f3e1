"""Reads. Functions return querysets or plain data computed in the database."""

from __future__ import annotations

from itertools import combinations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

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
