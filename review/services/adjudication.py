"""Adjudication: a multi-annotated image's answers settled into one consensus annotation, by a
reviewer or, on full agreement, automatically. The image row is the lock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from django.db import IntegrityError, transaction

from catalog.answers import JUSTIFICATION_MAX
from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, Image
from catalog.services import annotation_version_append
from infra.errors import Conflict, Forbidden, NotFound
from review import metrics
from review.models import AdjudicationMethod, AdjudicationRecord, AuditAction, AuditSettings
from review.services.common import audit_record, check_reviewer, reviewer_answer


def _votes(image_id: int) -> list[Annotation]:
    return list(
        Annotation.objects.filter(image_id=image_id, source=AnnotationSource.USER)
        .exclude(status__in=[AnnotationStatus.SUPERSEDED])
        .select_related("annotator")
        .order_by("id")
    )


def state_token(annotations: Iterable[Annotation]) -> str:
    """What the adjudication page showed: each answer's id and version (an optimistic-lock token)."""
    return ",".join(f"{a.pk}:{a.version}" for a in sorted(annotations, key=lambda a: a.pk))


def propose_consensus(annotations: Sequence[Annotation], threshold: float) -> tuple[list[str], list[str]]:
    """(selected factors, undecided factors) of the per-factor consensus rule (metrics.consensus_votes)."""
    votes = np.array([[getattr(a, k) for k in FACTOR_KEYS] for a in annotations], dtype=bool).reshape(-1, 16)
    if len(votes) == 0:
        return [], list(FACTOR_KEYS)
    selected, undecided = metrics.consensus_votes(votes, threshold)
    return (
        [k for k, s in zip(FACTOR_KEYS, selected, strict=True) if s],
        [k for k, u in zip(FACTOR_KEYS, undecided, strict=True) if u],
    )


def _settle(
    *,
    image: Image,
    annotations: list[Annotation],
    factors: list[str],
    nothing_differs: bool,
    justification: str,
    one_word: str,
    decided_by,
    method: str,
    threshold: float,
) -> Annotation:
    """Write the consensus, its record and the audit events. The caller holds the image's row lock."""
    proposed, undecided = propose_consensus(annotations, threshold)
    consensus = Annotation(
        image=image,
        source=AnnotationSource.CONSENSUS,
        annotator=None,
        status=AnnotationStatus.ACCEPTED,
        nothing_differs=nothing_differs,
        justification=justification,
        one_word=one_word,
        **{k: (k in factors) for k in FACTOR_KEYS},
    )
    try:
        with transaction.atomic():
            annotation_version_append(annotation=consensus, author=decided_by, reason="review:adjudicate")
    except IntegrityError:  # one_consensus_per_image
        raise Conflict("This image already has a consensus. Nothing was changed; reload.")
    votes = {
        str(a.pk): {
            "annotator": a.annotator_id,
            "username": a.annotator.get_username(),
            "version": a.version,
            "factors": a.selected_factors,
            "nothing_differs": a.nothing_differs,
        }
        for a in annotations
    }
    AdjudicationRecord.objects.create(
        image=image,
        consensus=consensus,
        decided_by=decided_by,
        method=method,
        threshold=threshold,
        votes=votes,
        proposed=proposed,
        undecided=undecided,
        result=factors,
    )
    audit_record(
        image_id=image.pk,
        annotation=consensus,
        actor=decided_by,
        action=AuditAction.AUTO_ACCEPT if method == AdjudicationMethod.AUTO else AuditAction.ADJUDICATE,
        before={"votes": votes, "proposed": proposed, "undecided": undecided},
        after=consensus.snapshot(),
    )
    for a in annotations:
        before = a.snapshot()
        a.status = AnnotationStatus.SUPERSEDED
        annotation_version_append(annotation=a, author=decided_by, reason="review:supersede")
        audit_record(
            image_id=image.pk,
            annotation=a,
            actor=decided_by,
            action=AuditAction.SUPERSEDE,
            before=before,
            after=a.snapshot(),
        )
    return consensus


def _lock_image_for_adjudication(image_id: int) -> tuple[Image, list[Annotation]]:
    # The image row is the lock for its adjudication: two reviewers settling the same image
    # queue here, and the second finds the consensus the first wrote.
    image = Image.objects.select_for_update().filter(pk=image_id).first()
    if image is None:
        raise NotFound(f"Image {image_id} does not exist.")
    if Annotation.objects.filter(image=image, source=AnnotationSource.CONSENSUS).exists():
        rec = AdjudicationRecord.objects.filter(image=image).select_related("decided_by").first()
        who = rec.decided_by.get_username() if rec and rec.decided_by else "the automatic rule"
        raise Conflict(f"This image was already adjudicated by {who}. Nothing was changed; reload.")
    return image, _votes(image_id)


@transaction.atomic
def adjudication_settle(
    *,
    image_id: int,
    reviewer,
    factors: Sequence[str],
    nothing_differs: bool = False,
    justification: str,
    one_word: str = "",
    expected_state: str,
) -> Annotation:
    """A reviewer settles a multi-annotated image; the answer becomes its consensus annotation."""
    check_reviewer(reviewer)
    answer = reviewer_answer(
        factors=factors, nothing_differs=nothing_differs, justification=justification, one_word=one_word
    )
    image, annotations = _lock_image_for_adjudication(image_id)
    settings_ = AuditSettings.current()
    if len(annotations) < 2:
        # The request is well formed; the image's state forbids it (it may get a second answer
        # later): a conflict, as the API documents, not bad input.
        raise Conflict("This image has fewer than two answers: there is nothing to adjudicate.", code="not_multi")
    if any(a.annotator_id == reviewer.pk for a in annotations):
        raise Forbidden(
            "You annotated this image yourself: another reviewer must adjudicate it.", code="own_annotation"
        )
    if state_token(annotations) != expected_state:
        raise Conflict("The answers changed since you opened this page. Nothing was changed; reload.")
    return _settle(
        image=image,
        annotations=annotations,
        factors=answer.factors,
        nothing_differs=answer.nothing_differs,
        justification=answer.justification,
        one_word=answer.one_word,
        decided_by=reviewer,
        method=AdjudicationMethod.REVIEWER,
        threshold=settings_.consensus_threshold,
    )


def adjudication_auto_accept(*, image_ids: Iterable[int] | None = None) -> int:
    """Give every complete multi-annotated image whose answers fully agree its consensus.

    Does nothing unless AuditSettings.auto_accept_full_agreement is on. "Complete" = the image
    has the answers it needs (selectors.multi_annotated_images). Returns how many were settled.
    """
    from review import selectors

    settings_ = AuditSettings.current()
    if not settings_.auto_accept_full_agreement:
        return 0
    candidates = selectors.multi_annotated_images(image_ids=image_ids).filter(n_disagree=0)
    settled = 0
    for image_id in candidates.values_list("image_id", flat=True):
        with transaction.atomic():
            try:
                image, annotations = _lock_image_for_adjudication(image_id)
            except Conflict:
                continue  # settled meanwhile by someone else
            if len(annotations) < 2 or len({tuple(a.selected_factors) for a in annotations}) != 1:
                continue
            first = annotations[0]
            texts = list(dict.fromkeys(a.justification for a in annotations if a.justification))
            _settle(
                image=image,
                annotations=annotations,
                factors=first.selected_factors,
                nothing_differs=first.nothing_differs and not first.selected_factors,
                justification=" | ".join(texts)[:JUSTIFICATION_MAX],
                one_word=first.one_word,
                decided_by=None,
                method=AdjudicationMethod.AUTO,
                threshold=settings_.consensus_threshold,
            )
            settled += 1
    return settled
