"""Submitting an answer (work or gold) and revising an own annotation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotator.models import (
    AnnotatorCounter,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Campaign,
    CampaignItem,
    GoldItem,
    GoldResponse,
    Qualification,
)
from annotator.services.leases import live_work_leases, lock_own_assignment, require_annotator
from annotator.services.qualification import qualification_decide
from catalog.answers import (
    TIME_ON_TASK_MAX_MS,
    Answer,
    f1_counts,
    f1_from_counts,
    factor_flags,
    main_factor_resolve,
)
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, AnnotationVersion
from catalog.services import annotation_create_statement, annotation_version_append
from infra import sql
from infra.errors import Conflict, DomainError, NotFound


@dataclass
class SubmitResult:
    assignment: Assignment
    annotation: Annotation | None = None
    gold_response: GoldResponse | None = None
    qualification: Qualification | None = None
    # True when this was a retried request for a submission stored earlier (nothing written).
    replayed: bool = False


def annotation_submit(*, assignment_id: int, user, answer: Answer, now: datetime | None = None) -> SubmitResult:
    """Save an answer for one of the user's assignments.

    A work answer becomes a catalog Annotation (version 1, kept in AnnotationVersion). A lease
    that expired is still honoured when the image still needs this annotation (the slot was not
    handed to someone else meanwhile); otherwise it is refused with a clear message and nothing
    is saved.
    """
    require_annotator(user)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            assignment = lock_own_assignment(assignment_id=assignment_id, user=user)
            if assignment.status == AssignmentStatus.SUBMITTED:
                # Idempotent for a retried request: the lease is the natural key, so the same
                # answer again (a client that lost our reply to a killed worker or a dropped
                # connection) gets the stored result back and nothing is written twice.
                replay = _submit_replay(assignment=assignment, answer=answer)
                if replay is not None:
                    return replay
                raise Conflict("You have already submitted this image; revise your annotation from 'My annotations'.")
            if assignment.status == AssignmentStatus.SKIPPED:
                raise Conflict("You skipped this image; it cannot be submitted any more.")
            elapsed = int((now - assignment.started_at).total_seconds() * 1000)
            time_ms = (
                answer.time_on_task_ms if answer.time_on_task_ms is not None else min(elapsed, TIME_ON_TASK_MAX_MS)
            )
            if assignment.kind == AssignmentKind.WORK:
                return _submit_work(assignment=assignment, user=user, answer=answer, now=now, time_ms=time_ms)
            return _submit_gold(assignment=assignment, user=user, answer=answer, now=now, time_ms=time_ms)
    except IntegrityError:
        raise Conflict("You have already annotated this image. Nothing was saved.", code="already_annotated")


def _same_answer(stored: dict, answer: Answer) -> bool:
    return (
        list(stored.get("factors") or []) == answer.factors
        and bool(stored.get("nothing_differs")) == answer.nothing_differs
        and (stored.get("justification") or "") == answer.justification
        and (stored.get("one_word") or "") == answer.one_word
    )


def _submit_replay(*, assignment: Assignment, answer: Answer) -> SubmitResult | None:
    """The stored result when `answer` repeats what was submitted for this (locked, submitted)
    assignment; None when it differs (a second answer is a revision, not a retry).

    Compared with the first version (what the original request wrote), so a retry that
    arrives after the annotator revised still finds its match and changes nothing.
    """
    if assignment.kind == AssignmentKind.WORK:
        if assignment.annotation_id is None:
            return None
        first = (
            AnnotationVersion.objects.filter(annotation_id=assignment.annotation_id)
            .order_by("version")
            .values_list("data", flat=True)
            .first()
        )
        if first is None or not _same_answer(first, answer):
            return None
        return SubmitResult(
            assignment=assignment, annotation=Annotation.objects.get(pk=assignment.annotation_id), replayed=True
        )
    response = GoldResponse.objects.select_related("gold_item").filter(assignment=assignment).first()
    if response is None or not _same_answer(
        {
            "factors": response.factors,
            "nothing_differs": response.nothing_differs,
            "justification": response.justification,
            "one_word": response.one_word,
        },
        answer,
    ):
        return None
    qual = (
        Qualification.objects.filter(campaign_id=assignment.campaign_id, annotator_id=assignment.annotator_id).first()
        if assignment.kind == AssignmentKind.QUALIFICATION
        else None
    )
    return SubmitResult(assignment=assignment, gold_response=response, qualification=qual, replayed=True)


def _submit_work(*, assignment: Assignment, user, answer: Answer, now: datetime, time_ms: int) -> SubmitResult:
    """Caller holds the assignment's lock; this takes the item's lock (always in that order)."""
    if not assignment.is_live(now):
        item = CampaignItem.objects.select_for_update().get(pk=assignment.item_id)
        others = live_work_leases(now).filter(item=item).exclude(pk=assignment.pk).count()
        if item.n_done + others >= item.planned:
            raise Conflict(
                "Your lease on this image expired and the image no longer needs your annotation "
                "(it was handed to another annotator). Nothing was saved; please take the next image.",
                code="lease_expired",
            )
    # The unique (image, annotator) constraint backs the queue's "never twice"; a violation
    # aborts the whole transaction and annotation_submit answers a Conflict.
    main_factor = _main_factor(answer, required=assignment.campaign.ask_main_factor)
    annotation = Annotation(
        image_id=assignment.image_id,
        source=AnnotationSource.USER,
        annotator=user,
        main_factor=main_factor,
        nothing_differs=answer.nothing_differs,
        justification=answer.justification,
        one_word=answer.one_word,
        status=AnnotationStatus.SUBMITTED,
        time_on_task_ms=time_ms,
        **factor_flags(answer.factors),
    )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = now
    if transaction.get_connection().vendor == "postgresql":
        _write_work_one_statement(assignment=assignment, annotation=annotation, user=user, now=now)
    else:
        # The live lease holds a slot, so the item cannot be full; the guarded UPDATE takes
        # the item's row lock and counts the answer in one statement (instead of SELECT ...
        # FOR UPDATE then UPDATE), and still never exceeds the plan: no row updated means
        # full, and raising rolls the whole submission back.
        if not sql.execute(_COUNT_ITEM_SQL, [assignment.item_id]):
            raise Conflict(_ITEM_FULL, code="item_full")
        annotation_version_append(annotation=annotation, author=user, reason="create")
        sql.execute(_SUBMITTED_SQL, [assignment.status, now, annotation.pk, assignment.pk])
        # The campaign's stored counter, in the same transaction as the item's, then the
        # annotator's. Last on purpose: every submit of the campaign updates the campaign's
        # row, and its lock is held from here to the commit only.
        sql.execute(_COUNT_CAMPAIGN_SQL, [assignment.campaign_id])
        sql.execute(
            f"{_COUNT_ANNOTATOR_SQL} VALUES (%s, %s, 1) {_COUNT_ANNOTATOR_CONFLICT}", [assignment.campaign_id, user.pk]
        )
    assignment.annotation = annotation
    return SubmitResult(assignment=assignment, annotation=annotation)


def _write_work_one_statement(*, assignment: Assignment, annotation: Annotation, user, now: datetime) -> None:
    """PostgreSQL: submit's six writes in one statement (a data-modifying WITH), each guarded
    by the item's counter: the item counted unless full (its row lock taken), the annotation
    and its version 1 (catalog's statement members), the lease marked submitted, the
    campaign's and the annotator's counters. One round trip instead of six (the profile put a
    third of next + submit's Python time in psycopg and Django's cursor, per round trip). The
    campaign row, which every submit of the campaign updates, is still locked only from here
    to the commit."""
    create = annotation_create_statement(annotation=annotation, author=user, reason="create", guard="item")
    row = sql.one(
        f"WITH item AS ({_COUNT_ITEM_SQL} RETURNING id), {create.members},"
        f" asg AS (UPDATE {Assignment._meta.db_table} SET status = %s, submitted_at = %s, annotation_id = ann.id"
        f" FROM ann WHERE {Assignment._meta.db_table}.id = %s RETURNING 1),"
        f" camp AS (UPDATE {Campaign._meta.db_table} SET n_done = n_done + 1 FROM ann"
        f" WHERE {Campaign._meta.db_table}.id = %s RETURNING 1),"
        f" mine AS ({_COUNT_ANNOTATOR_SQL} SELECT %s, %s, 1 FROM ann {_COUNT_ANNOTATOR_CONFLICT} RETURNING 1)"
        " SELECT ann.id, ver.id, (SELECT COUNT(*) FROM asg), (SELECT COUNT(*) FROM camp), (SELECT COUNT(*) FROM mine)"
        " FROM ann, ver",
        [
            assignment.item_id,
            *create.params,
            assignment.status,
            now,
            assignment.pk,
            assignment.campaign_id,
            assignment.campaign_id,
            user.pk,
        ],
    )
    if row is None:  # the item was full: nothing was written
        raise Conflict(_ITEM_FULL, code="item_full")
    if row[2:] != (1, 1, 1):  # cannot happen under the assignment's lock; never commit half of it
        raise RuntimeError(f"submit wrote {row[2:]} leases, campaign and annotator counters for {assignment.pk}")
    create.done(row[0], row[1])


_ITEM_FULL = "This image has all its planned annotations already. Nothing was saved."
_COUNT_ITEM_SQL = f"UPDATE {CampaignItem._meta.db_table} SET n_done = n_done + 1 WHERE id = %s AND n_done < planned"
_SUBMITTED_SQL = (
    f"UPDATE {Assignment._meta.db_table} SET status = %s, submitted_at = %s, annotation_id = %s WHERE id = %s"
)
_COUNT_CAMPAIGN_SQL = f"UPDATE {Campaign._meta.db_table} SET n_done = n_done + 1 WHERE id = %s"
_COUNTER = AnnotatorCounter._meta.db_table
_COUNT_ANNOTATOR_SQL = f"INSERT INTO {_COUNTER} (campaign_id, annotator_id, n_done)"
_COUNT_ANNOTATOR_CONFLICT = f"ON CONFLICT (campaign_id, annotator_id) DO UPDATE SET n_done = {_COUNTER}.n_done + 1"


def _main_factor(answer: Answer, *, required: bool) -> str:
    """The answer's main factor under the campaign's setting (the API and the form validated it
    with catalog.answers already; checked again here because the campaign decides)."""
    main, message = main_factor_resolve(answer.factors, answer.main_factor, required=required)
    if message and answer.main_factor:
        raise DomainError(message, field="main_factor")
    if message:
        # The answer is valid on its own; what it lacks is what this campaign (or the answer being
        # revised) asks for: a state rule, answered 409 like the services' other state conflicts.
        raise Conflict(message, field="main_factor", code="main_factor_required")
    return main


def _submit_gold(*, assignment: Assignment, user, answer: Answer, now: datetime, time_ms: int) -> SubmitResult:
    """Caller holds the assignment's lock."""
    gold = GoldItem.objects.get(pk=assignment.gold_item_id)
    tp, fp, fn = f1_counts(answer.factors, gold.factors)
    f1 = f1_from_counts(tp, fp, fn)
    response = GoldResponse.objects.create(
        assignment=assignment,
        gold_item=gold,
        annotator=user,
        factors=answer.factors,
        nothing_differs=answer.nothing_differs,
        justification=answer.justification,
        one_word=answer.one_word,
        tp=tp,
        fp=fp,
        fn=fn,
        f1=f1,
        time_on_task_ms=time_ms,
    )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = now
    assignment.save(update_fields=["status", "submitted_at"])
    qual = None
    if assignment.kind == AssignmentKind.QUALIFICATION:
        qual = qualification_decide(campaign=assignment.campaign, user=user, now=now)
    return SubmitResult(assignment=assignment, gold_response=response, qualification=qual)


# --- Revisions ----------------------------------------------------------------------------------
REVISABLE = (AnnotationStatus.SUBMITTED, AnnotationStatus.REJECTED)


def annotation_revise(*, annotation_id: int, user, answer: Answer) -> Annotation:
    """The annotator edits an own annotation until a reviewer has accepted or corrected it.

    Every version is kept (AnnotationVersion rows are appended, never updated). A rejected
    answer that is revised goes back to `submitted`, i.e. back to review.
    """
    require_annotator(user)
    with transaction.atomic():
        annotation = (
            Annotation.objects.select_for_update().filter(pk=annotation_id, annotator=user, source="user").first()
        )
        if annotation is None:
            raise NotFound("No such annotation.")
        if annotation.status not in REVISABLE:
            raise Conflict(
                f"This annotation was {annotation.status} by a reviewer; it can no longer be revised.", code="reviewed"
            )
        for key, value in factor_flags(answer.factors).items():
            setattr(annotation, key, value)
        annotation.main_factor = _main_factor(answer, required=bool(answer.main_factor) or bool(annotation.main_factor))
        annotation.nothing_differs = answer.nothing_differs
        annotation.justification = answer.justification
        annotation.one_word = answer.one_word
        annotation.status = AnnotationStatus.SUBMITTED
        annotation_version_append(annotation=annotation, author=user, reason="revise")
    return annotation
