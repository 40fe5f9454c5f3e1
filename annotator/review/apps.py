from django.apps import AppConfig


class ReviewConfig(AppConfig):
    # Review and audit live under annotator/ (DESIGN.md) but own their tables and migrations.
    name = "annotator.review"
    label = "review"
