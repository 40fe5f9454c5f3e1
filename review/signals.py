"""Hooks that keep the audit trail complete whichever app writes an annotation.

The annotator app writes annotations and appends an AnnotationVersion for every creation and
edit; the review app listens to those versions, so the trail is complete without the annotator
app knowing about review. (Rows written with bulk_create send no signal: annotation writes
must go through a version row created with .create()/.save().)
"""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from catalog.models import AnnotationVersion
from infra.enqueue import enqueue_coalesced


@receiver(post_save, sender=AnnotationVersion, dispatch_uid="review_audit_annotation_version")
def _audit_annotation_version(sender, instance: AnnotationVersion, created: bool, raw: bool = False, **kwargs):
    if not created or raw:
        return
    from review import services

    event = services.audit_record_version(version=instance)
    if event is None or not settings.REVIEW_CHECKS_ON_SUBMIT:
        return
    # After commit (infra.enqueue): the worker must see the row; a rolled-back submit enqueues
    # nothing. Coalesced: the id joins a list that a drain task handles in batches (one Celery
    # message per burst of submits instead of one per submit).
    from review.tasks import AFTER_SUBMIT, AFTER_SUBMIT_DRAIN

    enqueue_coalesced(AFTER_SUBMIT, instance.annotation_id, drain_task=AFTER_SUBMIT_DRAIN, eager_task=AFTER_SUBMIT)
