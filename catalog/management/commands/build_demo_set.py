"""manage.py build_demo_set: write and register the demo photographs (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from catalog.services import DEMO_SLUG, demo_dataset_build


class Command(BaseCommand):
    help = "Build the demo set of real photographs and known-factor variants under MEDIA_ROOT/datasets/demo."

    def handle(self, *args, **options) -> None:
        r = demo_dataset_build()
        if not r.changed:
            self.stdout.write(f"Demo set '{DEMO_SLUG}' is up to date: {r.images} images, nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo set '{DEMO_SLUG}': {r.images} images ({r.files_written} files written, {r.images_added} registered, "
                f"{r.classes_created} classes created, {r.links_set} known-factor links set)."
            )
        )
