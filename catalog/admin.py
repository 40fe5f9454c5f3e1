"""Django admin for the catalogue.

Annotations and their versions are read-only here: writes go through the services, which keep
the append-only version history; editing a row in the admin would bypass it.
"""

from __future__ import annotations

from django.contrib import admin

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass, ReferencePrototype


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "root", "created_at")
    search_fields = ("slug", "name")


@admin.register(ImageClass)
class ImageClassAdmin(admin.ModelAdmin):
    list_display = ("index", "name", "wnid", "meta_label", "meta_label_source", "dataset")
    list_filter = ("dataset", "meta_label", "meta_label_source")
    search_fields = ("name", "wnid")
    list_select_related = ("dataset",)
    ordering = ("dataset", "index")


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("file_name", "dataset", "split", "image_class", "width", "height", "readable", "unreadable_reason")
    list_filter = ("dataset", "split", "readable")
    search_fields = ("file_name", "sha256")
    list_select_related = ("dataset", "image_class")
    # Tens of thousands of rows: pick related rows by id, never through a <select> of all of them.
    raw_id_fields = ("image_class", "derived_from")
    show_full_result_count = False
    readonly_fields = ("sha256", "created_at")


@admin.register(ReferencePrototype)
class ReferencePrototypeAdmin(admin.ModelAdmin):
    list_display = ("file_name", "image_class", "position", "source_release", "dataset")
    list_filter = ("dataset", "source_release")
    search_fields = ("file_name",)
    list_select_related = ("dataset", "image_class")
    raw_id_fields = ("image_class",)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AnnotationVersionInline(admin.TabularInline):
    model = AnnotationVersion
    fields = ("version", "reason", "author", "created_at", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Annotation)
class AnnotationAdmin(_ReadOnlyAdmin):
    list_display = ("id", "image", "source", "annotator", "status", "version", "reference_top_factor", "factors")
    list_filter = ("source", "status", "source_release", "reference_top_factor", *FACTOR_KEYS)
    search_fields = ("image__file_name", "justification", "one_word", "annotator__username")
    list_select_related = ("image", "annotator")
    raw_id_fields = ("image", "annotator")
    show_full_result_count = False
    inlines = [AnnotationVersionInline]

    @admin.display(description="factors")
    def factors(self, obj: Annotation) -> str:
        return ", ".join(obj.selected_factors)


@admin.register(AnnotationVersion)
class AnnotationVersionAdmin(_ReadOnlyAdmin):
    list_display = ("annotation", "version", "reason", "author", "created_at")
    list_filter = ("reason",)
    list_select_related = ("annotation", "author")
    raw_id_fields = ("annotation", "author")
    show_full_result_count = False
