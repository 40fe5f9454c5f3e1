"""manage.py ingest_images FOLDER --dataset SLUG [--labels CSV] [--split val|train]."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.services import images_ingest
from infra.errors import DomainError


class Command(BaseCommand):
    help = (
        "Register a folder of images: ImageFolder layout (FOLDER/<class>/<file>) or a flat folder plus a "
        "file_name,label CSV. Every file is decoded with Pillow; unreadable files are recorded with their "
        "reason. Running it again adds only new files."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--dataset", required=True, help="Dataset slug (created when missing).")
        parser.add_argument("--name", default=None, help="Dataset name when the dataset is created.")
        parser.add_argument("--labels", type=Path, default=None, help="file_name,label CSV for a flat folder.")
        parser.add_argument("--split", default="val", choices=["val", "train"])
        parser.add_argument("--no-progress", action="store_true", help="No tqdm progress bar.")

    def handle(
        self,
        *args,
        folder: Path,
        dataset: str,
        name: str | None,
        labels: Path | None,
        split: str,
        no_progress: bool,
        **options,
    ) -> None:
        try:
            r = images_ingest(
                dataset_slug=dataset,
                root=folder,
                labels_csv=labels,
                split=split,
                dataset_name=name,
                progress=not no_progress,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for rel, reason in r.unreadable:
            self.stdout.write(self.style.WARNING(f"unreadable: {rel}: {reason}"))
        for rel in r.class_mismatches:
            self.stdout.write(self.style.WARNING(f"label differs from the catalogue's class (kept): {rel}"))
        for rel in r.ignored:
            self.stdout.write(f"ignored (no label): {rel}")
        if not r.added:
            self.stdout.write(f"Nothing new in {folder}: {r.already_registered} file(s) already registered.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Dataset '{dataset}': added {r.added} file(s) ({r.readable} readable, {len(r.unreadable)} unreadable); "
                f"{r.already_registered} already registered"
                + (f"; {r.attached} attached to existing images" if r.attached else "")
                + (f"; {r.classes_created} class(es) created" if r.classes_created else "")
                + "."
            )
        )
