"""manage.py import_imagenet_x [--path DIR]: load the public ImageNet-X release (idempotent)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.importers import RELEASE_NAME
from catalog.services import IMAGENET_X_SLUG, ReleaseImportError, imagenet_x_import


class Command(BaseCommand):
    help = (
        "Import the ImageNet-X release (classes, meta-labels, val and train annotations, top factors, "
        "prototypes) shipped by the imagenet_x package into dataset 'imagenet-x'. Running it again changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            default=None,
            help="Release folder to read instead of the installed package's imagenet_x/annotations/.",
        )

    def handle(self, *args, path: Path | None = None, **options) -> None:
        try:
            result = imagenet_x_import(path=path)
        except ReleaseImportError as exc:
            raise CommandError(f"ImageNet-X import refused, nothing was loaded: {exc}") from exc
        existing = ", ".join(f"{v:,} {k}" for k, v in result.existing.items() if v)
        if not result.changed:
            self.stdout.write(
                f"ImageNet-X {RELEASE_NAME} is already imported in dataset '{IMAGENET_X_SLUG}': nothing changed "
                f"({existing}; {result.seconds:.1f} s)."
            )
            return
        created = ", ".join(f"{v:,} {k}" for k, v in result.created.items() if v)
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported ImageNet-X {RELEASE_NAME} into dataset '{IMAGENET_X_SLUG}': created {created}"
                + (f"; already present: {existing}" if existing else "")
                + f" in {result.seconds:.1f} s."
            )
        )
