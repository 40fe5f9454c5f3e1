"""Writes of the review app: review decisions, adjudication, consistency flags, the audit trail.

Concurrency: every decision on an annotation locks its row (select_for_update) and compares the
version the reviewer saw (`expected_version`, carried by the form or the API call) with the
current one. Two reviewers acting at once: the first commits and bumps the version; the second
waits on the lock, then sees a newer version and gets a Conflict naming who decided what.
Nothing is lost: the loser's request changes nothing and the winner's decision stands.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np
from django.db import IntegrityError, transaction

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, AnnotationVersion, Image
from infra.errors import Conflict, DomainError, Forbidden, NotFound
from infra.roles import Role, has_role
from review import metrics
from review.models import (
    AdjudicationMethod,
    AdjudicationRecord,
    AuditAction,
    AuditEvent,
    AuditSettings,
    ConsistencyFlag,
    ReviewAction,
    ReviewDecision,
)

MAX_COMMENT = 2000
MAX_JUSTIFICATION = 2000
MAX_ONE_WORD = 300


# --- helpers -----------------------------------------------------------------------------


def _check_reviewer(user) -> None:
    if not has_role(user, Role.REVIEWER, Role.MAINTAINER):
        raise Forbidden("Only reviewers and maintainers can review annotations.")


def _clean_factors(factors: Iterable[str], nothing_differs: bool) -> list[str]:
    factors = list(dict.fromkeys(factors))
    unknown = [f for f in factors if f not in FACTOR_KEYS]
    if unknown:
        raise DomainError(f"Unknown factor(s): {', '.join(unknown)}.", field="factors", code="unknown_factor")
    if factors and nothing_differs:
        raise DomainError("Tick factors or choose “nothing differs”, not both.", field="nothing_differs")
    if not factors and not nothing_differs:
        raise DomainError("Tick at least one factor, or choose “nothing differs” explicitly.", field="factors")
    return [k for k in FACTOR_KEYS if k in factors]


def _clean_text(value: str, *, field: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise DomainError(f"The {field.replace('_', ' ')} is required.", field=field, code="required")
    if len(value) > limit:
        raise DomainError(
            f"The {field.replace('_', ' ')} is longer than {limit} characters.", field=field, code="too_long"
        )
    return value


def _new_version(annotation: Annotation, *, author, reason: str) -> AnnotationVersion:
    """Bump the version and append its snapshot. The caller holds the annotation's row lock."""
    annotation.version += 1
    annotation.save()
    return AnnotationVersion.objects.create(
        annotation=annotation, version=annotation.version, data=annotation.snapshot(), author=author, reason=reason
    )


def _lock_for_review(*, annotation_id: int, reviewer, expected_version: int) -> Annotation:
    """Lock the annotation row and check that this reviewer may decide on the version they saw."""
    _check_reviewer(reviewer)
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


def _record(
    *, image_id: int, annotation: Annotation | None, actor, action: str, before=None, after=None, comment: str = ""
) -> AuditEvent:
    return AuditEvent.objects.create(
        image_id=image_id,
        annotation=annotation,
        actor=actor,
        action=action,
        before=before,
        after=after,
        comment=comment,
    )


# --- the audit trail of annotators' own writes ---------------------------------------------


def audit_record_version(*, version: AnnotationVersion) -> AuditEvent | None:
    """Record an annotator's creation or edit (called for every new AnnotationVersion).

    Versions the review services write (reason "review:...") are recorded by those services
    with richer before/after, so they are skipped here.
    """
    if version.reason.startswith("review:"):
        return None
    ann = version.annotation
    # Version 1 has no predecessor: skipping the lookup keeps a submission at one extra query
    # (this INSERT), whatever the data size.
    previous = (
        None
        if version.version <= 1
        else AnnotationVersion.objects.filter(annotation_id=ann.pk, version__lt=version.version)
        .order_by("-version")
        .first()
    )
    return _record(
        image_id=ann.image_id,
        annotation=ann,
        actor=version.author,
        action=AuditAction.CREATE if previous is None else AuditAction.EDIT,
        before=previous.data if previous else None,
        after=version.data,
    )


# --- review decisions ------------------------------------------------------------------------


def _review_set_status(
    *, annotation_id: int, reviewer, expected_version: int, comment: str, status: str, action: str, audit_action: str
) -> Annotation:
    """Accept or reject: one new version with the new status, the decision and the audit row.

    The caller holds the transaction; _lock_for_review takes the row lock and checks the version.
    """
    ann = _lock_for_review(annotation_id=annotation_id, reviewer=reviewer, expected_version=expected_version)
    before = ann.snapshot()
    ann.status = status
    _new_version(ann, author=reviewer, reason=f"review:{action}")
    _decide(ann, reviewer, action, expected_version, comment)
    _record(
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
        comment=_clean_text(comment, field="comment", limit=MAX_COMMENT),
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
        comment=_clean_text(comment, field="comment", limit=MAX_COMMENT, required=True),
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
    factors = _clean_factors(factors, nothing_differs)
    justification = _clean_text(justification, field="justification", limit=MAX_JUSTIFICATION, required=True)
    one_word = _clean_text(one_word, field="one_word", limit=MAX_ONE_WORD)
    comment = _clean_text(comment, field="comment", limit=MAX_COMMENT)
    ann = _lock_for_review(annotation_id=annotation_id, reviewer=reviewer, expected_version=expected_version)
    before = ann.snapshot()
    for k in FACTOR_KEYS:
        setattr(ann, k, k in factors)
    ann.nothing_differs = nothing_differs
    ann.justification = justification
    ann.one_word = one_word
    ann.status = AnnotationStatus.CORRECTED
    _new_version(ann, author=reviewer, reason="review:correct")
    _decide(ann, reviewer, ReviewAction.CORRECT, expected_version, comment)
    _record(
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


# --- adjudication ----------------------------------------------------------------------------


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
            consensus.save()
    except IntegrityError:  # one_consensus_per_image
        raise Conflict("This image already has a consensus. Nothing was changed; reload.")
    AnnotationVersion.objects.create(
        annotation=consensus, version=1, data=consensus.snapshot(), author=decided_by, reason="review:adjudicate"
    )
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
    _record(
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
        _new_version(a, author=decided_by, reason="review:supersede")
        _record(
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
    _check_reviewer(reviewer)
    factors = _clean_factors(factors, nothing_differs)
    justification = _clean_text(justification, field="justification", limit=MAX_JUSTIFICATION, required=True)
    one_word = _clean_text(one_word, field="one_word", limit=MAX_ONE_WORD)
    image, annotations = _lock_image_for_adjudication(image_id)
    settings_ = AuditSettings.current()
    if len(annotations) < 2:
        raise DomainError("This image has fewer than two answers: there is nothing to adjudicate.", code="not_multi")
    if any(a.annotator_id == reviewer.pk for a in annotations):
        raise Forbidden(
            "You annotated this image yourself: another reviewer must adjudicate it.", code="own_annotation"
        )
    if state_token(annotations) != expected_state:
        raise Conflict("The answers changed since you opened this page. Nothing was changed; reload.")
    return _settle(
        image=image,
        annotations=annotations,
        factors=factors,
        nothing_differs=nothing_differs,
        justification=justification,
        one_word=one_word,
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
    candidates = selectors.multi_annotated_images(image_ids=image_ids).filter(disagree=False)
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
                justification=" | ".join(texts)[:MAX_JUSTIFICATION],
                one_word=first.one_word,
                decided_by=None,
                method=AdjudicationMethod.AUTO,
                threshold=settings_.consensus_threshold,
            )
            settled += 1
    return settled


# --- consistency flags -------------------------------------------------------------------------


def consistency_check(*, annotation_ids: Iterable[int]) -> int:
    """Flag annotations whose justification disagrees with their ticks (consistency.py has the rule).

    Idempotent per annotation version. Returns the number of new flags.
    """
    from django.conf import settings

    anns = list(
        Annotation.objects.filter(pk__in=list(annotation_ids), source=AnnotationSource.USER).exclude(justification="")
    )
    if not anns:
        return 0
    matcher = _matcher(settings.SPACY_MODEL)
    results = matcher.check_many([(a.justification, a.selected_factors) for a in anns])
    created = 0
    for ann, flags in zip(anns, results, strict=True):
        for flag in flags:
            with transaction.atomic():
                obj, new = ConsistencyFlag.objects.get_or_create(
                    annotation=ann,
                    annotation_version=ann.version,
                    kind=flag.kind,
                    factor=flag.factor,
                    defaults={"reason": flag.reason[:500], "evidence": flag.evidence[:200]},
                )
                if new:
                    created += 1
                    _record(
                        image_id=ann.image_id,
                        annotation=ann,
                        actor=None,
                        action=AuditAction.FLAG,
                        after={"kind": flag.kind, "factor": flag.factor, "version": ann.version},
                        comment=flag.reason,
                    )
    return created


@functools.lru_cache(maxsize=2)
def _matcher(model_name: str):
    # The matcher precomputes the cue vectors once per spaCy model (load_nlp caches the model
    # by name too); keyed by name, not id(nlp), which a collected model's successor can reuse.
    from infra.embeddings import load_nlp
    from review.consistency import CueMatcher

    return CueMatcher(load_nlp(model_name))


def review_after_submit(*, annotation_id: int) -> dict:
    """What happens after an annotator submits or edits: consistency flags, then auto-acceptance."""
    flags = consistency_check(annotation_ids=[annotation_id])
    image_id = Annotation.objects.filter(pk=annotation_id).values_list("image_id", flat=True).first()
    settled = adjudication_auto_accept(image_ids=[image_id]) if image_id else 0
    return {"flags": flags, "settled": settled}


__all__ = [
    "adjudication_auto_accept",
    "adjudication_settle",
    "audit_record_version",
    "consistency_check",
    "review_accept",
    "review_correct",
    "review_reject",
    "review_after_submit",
    "state_token",
]


@transaction.atomic
def audit_settings_update(*, user, **values) -> AuditSettings:
    """Change the audit sampling and adjudication knobs (maintainers only); validated by the model."""
    from django.core.exceptions import ValidationError

    if not has_role(user, Role.MAINTAINER):
        raise Forbidden("Only maintainers change the audit settings.")
    cfg = AuditSettings.objects.select_for_update().get(pk=AuditSettings.current().pk)
    allowed = {f.name for f in AuditSettings._meta.concrete_fields} - {"id"}
    unknown = set(values) - allowed
    if unknown:
        raise DomainError(f"Unknown setting(s): {', '.join(sorted(unknown))}.", code="unknown_setting")
    for k, v in values.items():
        setattr(cfg, k, v)
    try:
        cfg.full_clean()
    except ValidationError as e:
        field = next(iter(e.message_dict), None) if hasattr(e, "error_dict") else None
        raise DomainError("; ".join(e.messages), field=field, details=getattr(e, "message_dict", {}))
    cfg.save()
    return cfg
