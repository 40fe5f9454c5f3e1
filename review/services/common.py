"""What the review services share: who may review, the answer a reviewer writes, the audit row."""

from __future__ import annotations

from catalog.answers import Answer, answer_clean
from catalog.models import Annotation
from infra import sql
from infra.errors import DomainError, Forbidden
from infra.roles import Role, has_role
from review.models import AuditEvent

MAX_COMMENT = 2000


def check_reviewer(user) -> None:
    if not has_role(user, Role.REVIEWER, Role.MAINTAINER):
        raise Forbidden("Only reviewers and maintainers can review annotations.")


def reviewer_answer(
    *,
    factors,
    nothing_differs: bool,
    justification: str,
    one_word: str,
    main_factor: str = "",
    main_factor_required: bool = False,
) -> Answer:
    """A reviewer's correction or consensus, held to the annotator's rules (catalog.answers): the
    same factor rule, main-factor rule, justification and one-word limits; only the summary may
    be left empty."""
    return answer_clean(
        factors=factors,
        nothing_differs=nothing_differs,
        justification=justification,
        one_word=one_word,
        one_word_required=False,
        main_factor=main_factor,
        main_factor_required=main_factor_required,
    )


def clean_comment(value: str, *, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise DomainError("The comment is required.", field="comment", code="required")
    if len(value) > MAX_COMMENT:
        raise DomainError(f"The comment is longer than {MAX_COMMENT} characters.", field="comment", code="too_long")
    return value


def audit_record(
    *, image_id: int, annotation: Annotation | None, actor, action: str, before=None, after=None, comment: str = ""
) -> AuditEvent:
    # A prepared INSERT (infra.sql): every submission writes one of these.
    return sql.insert(
        AuditEvent(
            image_id=image_id,
            annotation=annotation,
            actor=actor,
            action=action,
            before=before,
            after=after,
            comment=comment,
        )
    )
