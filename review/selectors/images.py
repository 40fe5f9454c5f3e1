"""One image under review: its answers, flags, consensus, adjudication, timeline; answers returned to their annotator."""

from __future__ import annotations

from django.db.models import (
    OuterRef,
    QuerySet,
    Subquery,
)

from catalog.models import Annotation, AnnotationSource, AnnotationStatus, Image
from review.models import (
    AdjudicationRecord,
    AuditEvent,
    ConsistencyFlag,
    ReviewAction,
    ReviewDecision,
)

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
