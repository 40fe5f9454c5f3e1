from django.contrib import admin

from evaluation.models import Evaluation, ZooModel


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "dataset", "status", "which_factor", "correctness", "shared", "created_at"]
    list_filter = ["status", "which_factor", "correctness", "shared"]
    exclude = ["metrics"]


@admin.register(ZooModel)
class ZooModelAdmin(admin.ModelAdmin):
    list_display = ["group", "name", "which_factor", "correctness", "average"]
    list_filter = ["group", "which_factor", "correctness"]
