"""The audit trail of annotators' own writes, and the audit settings."""

from __future__ import annotations

from django.db import transaction

from catalog.models import AnnotationVersion
from infra.errors import DomainError, Forbidden
from infra.roles import Role, has_role
from review.models import AuditAction, AuditEvent, AuditSettings
from review.services.common import audit_record


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
    return audit_record(
        image_id=ann.image_id,
        annotation=ann,
        actor=version.author,
        action=AuditAction.CREATE if previous is None else AuditAction.EDIT,
        before=previous.data if previous else None,
        after=version.data,
    )


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
