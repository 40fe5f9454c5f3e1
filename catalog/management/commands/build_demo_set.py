"""manage.py build_demo_set: write and register the demo photographs (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.services import DEMO_SLUG, demo_dataset_build
from infra.errors import DomainError


class Command(BaseCommand):
    help = "Build the demo set of real photographs and known-factor variants under MEDIA_ROOT/datasets/demo."

    def handle(self, *args, **options) -> None:
        try:
            r = demo_dataset_build()
        except (DomainError, FileNotFoundError) as exc:  # a missing source photo names its package
            raise CommandError(f"demo set not built: {exc}") from exc
        if not r.changed:
            self.stdout.write(f"Demo set '{DEMO_SLUG}' is up to date: {r.images} images, nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo set '{DEMO_SLUG}': {r.images} images ({r.files_written} files written, {r.images_added} registered, "
                f"{r.classes_created} classes created, {r.links_set} known-factor links set)."
            )
        )
