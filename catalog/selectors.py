"""Reads. Functions return querysets or plain data computed in the database."""

from __future__ import annotations

from itertools import combinations

from django.db.models import Count, Q, QuerySet

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Dataset


def dataset_summaries() -> QuerySet[Dataset]:
    return Dataset.objects.annotate(
        n_images=Count("images", distinct=True),
        n_classes=Count("classes", distinct=True),
    ).order_by("slug")


def factor_counts(annotations: QuerySet[Annotation]) -> dict[str, int]:
    """Number of annotations per factor, counted by the database in one query."""
    return annotations.aggregate(**{k: Count("id", filter=Q(**{k: True})) for k in FACTOR_KEYS})


def factor_pair_counts(annotations: QuerySet[Annotation]) -> dict[tuple[str, str], int]:
    """Number of annotations with both factors selected, for all 120 pairs, in one query."""
    pairs = list(combinations(FACTOR_KEYS, 2))
    row = annotations.aggregate(
        **{f"{a}__{b}": Count("id", filter=Q(**{a: True, b: True})) for a, b in pairs}
    )
    return {(a, b): row[f"{a}__{b}"] for a, b in pairs}
