"""Writes of annotations and their history: the one place that appends AnnotationVersion rows.

Every stage that writes an annotation (the annotator's submit and revise, review's decisions,
corrections and consensus, the release import) goes through here, so "save the annotation and
append its version" is written once. AnnotationVersion is append-only (catalog.models).
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.models import Annotation, AnnotationVersion
from infra import sql
from infra.bulkcopy import bulk_insert


def annotation_version_append(*, annotation: Annotation, author, reason: str) -> AnnotationVersion:
    """Save `annotation` and append the snapshot of its new version.

    A new annotation (not yet saved) is inserted as version 1; an existing one gets its version
    bumped and saved. For an existing annotation the caller holds its row lock (select_for_update)
    and the transaction. Two queries: the annotation's INSERT or UPDATE, the version's INSERT
    (plus what post_save receivers do: review's audit trail).
    """
    if annotation._state.adding:
        annotation.version = 1
        sql.insert(annotation)  # a prepared INSERT: every submission writes one
    else:
        annotation.version += 1
        annotation.save()
    return sql.insert(
        AnnotationVersion(
            annotation=annotation, version=annotation.version, data=annotation.snapshot(), author=author, reason=reason
        )
    )


def annotation_versions_import(annotations: Sequence[Annotation], *, batch_size: int) -> list[AnnotationVersion]:
    """Version 1 of annotations just bulk-inserted by an import (bulk, no signals: the audit trail
    records people's writes, not the release's)."""
    return bulk_insert(
        AnnotationVersion,
        [
            AnnotationVersion(annotation_id=a.id, version=1, data=a.snapshot(), author=None, reason="import")
            for a in annotations
        ],
        batch_size=batch_size,
    )
