from django.contrib import admin

from review.models import AuditSettings


@admin.register(AuditSettings)
class AuditSettingsAdmin(admin.ModelAdmin):
    list_display = (
        "base_rate",
        "new_annotator_rate",
        "low_gold_rate",
        "consensus_threshold",
        "auto_accept_full_agreement",
        "min_annotations",
    )
