"""The audit trail is complete and append-only (model layer and, on PostgreSQL, a trigger)."""

import pytest
from django.db import connection, transaction

from catalog.models import AnnotationVersion
from review import services
from review.models import AppendOnlyError, AuditEvent, ReviewDecision
from tests.review.conftest import answer


@pytest.mark.embedded
def test_creation_and_edit_by_the_annotator_are_recorded_with_before_and_after(images, annotator):
    ann = answer(images[0], annotator, ["pose"])
    ann.color = True
    ann.version = 2
    ann.save()
    AnnotationVersion.objects.create(annotation=ann, version=2, data=ann.snapshot(), author=annotator, reason="edit")
    create, edit = AuditEvent.objects.filter(annotation=ann).order_by("id")
    assert create.action == "create" and create.before is None and create.after["factors"] == ["pose"]
    assert edit.action == "edit" and edit.before["factors"] == ["pose"] and edit.after["factors"] == ["pose", "color"]
    assert edit.actor == annotator


@pytest.mark.embedded
def test_model_layer_refuses_to_rewrite_or_delete_events(images, annotator):
    ann = answer(images[0], annotator, ["pose"])
    event = AuditEvent.objects.get(annotation=ann)
    event.comment = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(comment="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    event.refresh_from_db()
    assert event.comment == ""


@pytest.mark.embedded
def test_an_annotation_with_history_cannot_be_deleted(images, annotator):
    from django.db.models import ProtectedError

    ann = answer(images[0], annotator, ["pose"])
    with pytest.raises(ProtectedError):
        ann.delete()


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["review_auditevent", "review_reviewdecision"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET created_at = now()", "DELETE FROM {t}"])
def test_database_trigger_refuses_update_and_delete(images, annotator, reviewer, table, statement):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    ann = answer(images[0], annotator, ["pose"])
    services.review_accept(annotation_id=ann.pk, reviewer=reviewer, expected_version=1)
    before = (AuditEvent.objects.count(), ReviewDecision.objects.count())
    with pytest.raises(Exception, match="append-only"):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(statement.format(t=table))
    assert (AuditEvent.objects.count(), ReviewDecision.objects.count()) == before
