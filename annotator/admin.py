from django.contrib import admin

from annotator import services
from annotator.models import Assignment, Campaign, CampaignItem, GoldItem, GoldResponse, Qualification


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "dataset",
        "split",
        "status",
        "overlap_fraction",
        "overlap_copies",
        "gold_rate",
        "created_at",
    ]
    list_filter = ["status", "dataset"]
    filter_horizontal = ["classes"]


@admin.register(CampaignItem)
class CampaignItemAdmin(admin.ModelAdmin):
    list_display = ["campaign", "image", "planned", "n_done", "position"]
    list_filter = ["campaign"]
    raw_id_fields = ["image"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "campaign",
        "annotator",
        "kind",
        "image",
        "status",
        "started_at",
        "expires_at",
        "prototype_run_id",
    ]
    list_filter = ["campaign", "kind", "status"]
    raw_id_fields = ["item", "gold_item", "image", "annotation", "prototype_run"]


@admin.register(GoldItem)
class GoldItemAdmin(admin.ModelAdmin):
    list_display = ["campaign", "image", "kind", "factors", "source"]
    list_filter = ["campaign", "kind"]
    raw_id_fields = ["image"]


@admin.register(GoldResponse)
class GoldResponseAdmin(admin.ModelAdmin):
    list_display = ["annotator", "gold_item", "f1", "created_at"]
    raw_id_fields = ["assignment", "gold_item"]


@admin.action(description="Reset the qualification (the annotator may take it again)")
def reset_qualification(modeladmin, request, queryset):
    for q in queryset:
        services.qualification_reset(campaign_id=q.campaign_id, annotator_id=q.annotator_id)


@admin.register(Qualification)
class QualificationAdmin(admin.ModelAdmin):
    list_display = ["campaign", "annotator", "status", "score", "decided_at"]
    list_filter = ["campaign", "status"]
    actions = [reset_qualification]
