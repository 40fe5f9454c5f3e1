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
    flags = consistency_check(annotation_ids=[annotation_id])
    image_id = Annotation.objects.filter(pk=annotation_id).values_list("image_id", flat=True).first()
    settled = adjudication_auto_accept(image_ids=[image_id]) if image_id else 0
    return {"flags": flags, "settled": settled}
