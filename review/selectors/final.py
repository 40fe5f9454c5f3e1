"""The final answer of each image: review's rule (curation and exports read it from here)."""

from __future__ import annotations

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from catalog.models import Annotation, AnnotationSource, AnnotationStatus

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
