"""Review decisions: accept, reject (with a comment), correct (the reviewer's edit becomes the
current version). Each locks the annotation row and compares the version the reviewer saw."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from catalog.answers import factor_flags
from catalog.models import Annotation, AnnotationSource, AnnotationStatus
from catalog.services import annotation_version_append
from infra.errors import Conflict, DomainError, Forbidden, NotFound
from review.models import AuditAction, ReviewAction, ReviewDecision
from review.services.common import audit_record, check_reviewer, clean_comment, reviewer_answer


def _lock_for_review(*, annotation_id: int, reviewer, expected_version: int) -> Annotation:
    """Lock the annotation row and check that this reviewer may decide on the version they saw."""
    check_reviewer(reviewer)
    ann = Annotation.objects.select_for_update().filter(pk=annotation_id).first()
    if ann is None:
        raise NotFound(f"Annotation {annotation_id} does not exist.")
    if ann.source != AnnotationSource.USER:
        raise DomainError(
            "Only annotators' answers are reviewed; imported and consensus records are not.", code="not_reviewable"
        )
    if ann.annotator_id == reviewer.pk:
        raise Forbidden("You cannot review your own annotation.", code="own_annotation")
    if ann.version != expected_version or ann.status != AnnotationStatus.SUBMITTED:
        last = ReviewDecision.objects.filter(annotation=ann).select_related("reviewer").order_by("-id").first()
        if last is not None and last.reviewed_version >= expected_version:
            msg = f"Someone acted first: {last.reviewer.get_username()} chose “{last.action}” at {last.created_at:%H:%M:%S}."
        elif ann.version != expected_version:
            msg = "The annotation changed since you opened it (a newer version exists)."
        else:
            msg = f"The annotation is no longer waiting for review (it is {ann.get_status_display()})."
        raise Conflict(
            msg + " Nothing was changed; reload to see the current state.",
            details={"current_version": ann.version, "status": ann.status},
        )
    return ann


def _review_set_status(
    *, annotation_id: int, reviewer, expected_version: int, comment: str, status: str, action: str, audit_action: str
) -> Annotation:
    """Accept or reject: one new version with the new status, the decision and the audit row.

    The caller holds the transaction; _lock_for_review takes the row lock and checks the version.
    """
    ann = _lock_for_review(annotation_id=annotation_id, reviewer=reviewer, expected_version=expected_version)
    before = ann.snapshot()
    ann.status = status
    annotation_version_append(annotation=ann, author=reviewer, reason=f"review:{action}")
    _decide(ann, reviewer, action, expected_version, comment)
    audit_record(
        image_id=ann.image_id,
        annotation=ann,
        actor=reviewer,
        action=audit_action,
        before=before,
        after=ann.snapshot(),
        comment=comment,
    )
    return ann


@transaction.atomic
def review_accept(*, annotation_id: int, reviewer, expected_version: int, comment: str = "") -> Annotation:
    return _review_set_status(
        annotation_id=annotation_id,
        reviewer=reviewer,
        expected_version=expected_version,
        comment=clean_comment(comment),
        status=AnnotationStatus.ACCEPTED,
        action=ReviewAction.ACCEPT,
        audit_action=AuditAction.ACCEPT,
    )


@transaction.atomic
def review_reject(*, annotation_id: int, reviewer, expected_version: int, comment: str) -> Annotation:
    """Send the annotation back to its annotator, who sees the comment (selectors.returned_annotations)."""
    return _review_set_status(
        annotation_id=annotation_id,
        reviewer=reviewer,
        expected_version=expected_version,
        comment=clean_comment(comment, required=True),
        status=AnnotationStatus.REJECTED,
        action=ReviewAction.REJECT,
        audit_action=AuditAction.REJECT,
    )


@transaction.atomic
def review_correct(
    *,
    annotation_id: int,
    reviewer,
    expected_version: int,
    factors: Sequence[str],
    nothing_differs: bool = False,
    justification: str,
    one_word: str = "",
    comment: str = "",
) -> Annotation:
    """The reviewer's edit becomes a new version and the current state; earlier versions stay."""
    answer = reviewer_answer(
        factors=factors, nothing_differs=nothing_differs, justification=justification, one_word=one_word
    )
    comment = clean_comment(comment)
    ann = _lock_for_review(annotation_id=annotation_id, reviewer=reviewer, expected_version=expected_version)
    before = ann.snapshot()
    for k, ticked in factor_flags(answer.factors).items():
        setattr(ann, k, ticked)
    ann.nothing_differs = answer.nothing_differs
    ann.justification = answer.justification
    ann.one_word = answer.one_word
    ann.status = AnnotationStatus.CORRECTED
    annotation_version_append(annotation=ann, author=reviewer, reason="review:correct")
    _decide(ann, reviewer, ReviewAction.CORRECT, expected_version, comment)
    audit_record(
        image_id=ann.image_id,
        annotation=ann,
        actor=reviewer,
        action=AuditAction.CORRECT,
        before=before,
        after=ann.snapshot(),
        comment=comment,
    )
    return ann


def _decide(ann: Annotation, reviewer, action: str, version: int, comment: str) -> None:
    try:
        with transaction.atomic():
            ReviewDecision.objects.create(
                annotation=ann, reviewed_version=version, reviewer=reviewer, action=action, comment=comment
            )
    except IntegrityError:  # only reachable without the row lock (e.g. SQLite); same answer
        raise Conflict("Another reviewer decided on this version first. Nothing was changed; reload.")
