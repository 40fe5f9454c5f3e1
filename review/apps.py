from django.apps import AppConfig


class ReviewConfig(AppConfig):
    # Review and audit live under annotator/ (DESIGN.md) but own their tables and migrations.
    name = "review"
    label = "review"
    verbose_name = "Review and quality"

    def ready(self) -> None:
        from review import signals  # noqa: F401  (connects the audit-trail hooks)
