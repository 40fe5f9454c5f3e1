"""Writes of annotations and their history: the one place that appends AnnotationVersion rows.

Every stage that writes an annotation (the annotator's submit and revise, review's decisions,
corrections and consensus, the release import) goes through here, so "save the annotation and
append its version" is written once. AnnotationVersion is append-only (catalog.models).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass
class AnnotationCreateStatement:
    """annotation_version_append() for a new annotation, as two members of a caller's
    data-modifying WITH (PostgreSQL only): `ann` (the annotation) and `ver` (version 1), written
    once per row of the caller's member `guard` (none when it returns no row). The caller adds
    its own members (they may read `ann.id`), selects `ann.id, ver.id`, runs the statement, then
    calls done() with them: the instances get their keys and the same signals as
    annotation_version_append sends (review's audit trail)."""

    members: str
    params: list
    annotation: Annotation
    version: AnnotationVersion

    def done(self, annotation_id: int, version_id: int) -> AnnotationVersion:
        sql.inserted(self.annotation, annotation_id)
        self.version.annotation = self.annotation
        return sql.inserted(self.version, version_id)


def annotation_create_statement(
    *, annotation: Annotation, author, reason: str, guard: str
) -> AnnotationCreateStatement:
    if not annotation._state.adding:
        raise ValueError("annotation_create_statement writes new annotations only")
    annotation.version = 1
    ann_sql, ann_params = sql.insert_from(annotation, source=guard, columns={})
    version = AnnotationVersion(version=1, data=annotation.snapshot(), author=author, reason=reason)
    ver_sql, ver_params = sql.insert_from(version, source="ann", columns={"annotation_id": "ann.id"})
    return AnnotationCreateStatement(
        members=f"ann AS ({ann_sql}), ver AS ({ver_sql})",
        params=[*ann_params, *ver_params],
        annotation=annotation,
        version=version,
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
