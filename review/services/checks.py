"""Consistency flags (justification vs ticks) and what runs after an annotator's submission."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.db import transaction

from catalog.models import Annotation, AnnotationSource
from review.models import AuditAction, ConsistencyFlag
from review.services.adjudication import adjudication_auto_accept
from review.services.common import audit_record


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
                    audit_record(
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
    return review_after_submit_many(annotation_ids=[annotation_id])


def review_after_submit_many(*, annotation_ids: list[int]) -> dict:
    """review_after_submit for a batch (the coalesced after-submit queue): the checks of many
    answers share their queries and spaCy's batch. Idempotent: an answer seen twice (a drain
    that died mid-batch) gets no second flag and no second acceptance."""
    ids = sorted(set(annotation_ids))
    flags = consistency_check(annotation_ids=ids)
    image_ids = sorted(set(Annotation.objects.filter(pk__in=ids).values_list("image_id", flat=True)))
    settled = adjudication_auto_accept(image_ids=image_ids) if image_ids else 0
    return {"flags": flags, "settled": settled, "annotations": len(ids)}
