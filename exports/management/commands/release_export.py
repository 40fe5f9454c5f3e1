"""manage.py release_export VERSION --out DIR [--dataset SLUG]: write a published release to DIR.

For scripts and CI: copies the archive and unpacks its files into DIR/<slug>-<version>/, after
checking every file against the checksum recorded when the release was built.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exports.models import Release, ReleaseStatus
from exports.selectors import open_verified_release_file
from exports.services import normalize_version
from exports.writers import sha256_file
from infra.errors import DomainError


class Command(BaseCommand):
    help = "Write a published release's archive and unpacked files to a folder (checksums verified)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version", help="Semantic version, e.g. 1.0.0 (a leading v is accepted).")
        parser.add_argument("--out", required=True, type=Path, help="Folder to write to (created if missing).")
        parser.add_argument("--dataset", help="Dataset slug; needed when several datasets have this version.")

    def handle(self, *args, version: str, out: Path, dataset: str | None = None, **options) -> None:
        version = normalize_version(version)
        qs = Release.objects.select_related("dataset").filter(version=version, status=ReleaseStatus.PUBLISHED)
        if dataset:
            qs = qs.filter(dataset__slug=dataset)
        releases = list(qs)
        if not releases:
            raise CommandError(f"No published release {version}" + (f" of dataset {dataset!r}." if dataset else "."))
        if len(releases) > 1:
            slugs = ", ".join(r.dataset.slug for r in releases)
            raise CommandError(f"Several datasets have a published release {version} ({slugs}); pass --dataset.")
        release = releases[0]
        out.mkdir(parents=True, exist_ok=True)
        try:
            fh, archive_name, archive_sha = open_verified_release_file(release, None)
            with fh, open(out / archive_name, "wb") as dst:
                shutil.copyfileobj(fh, dst)
            unpacked = out / release.base_name
            if unpacked.exists():
                shutil.rmtree(unpacked)
            with tarfile.open(out / archive_name) as tar:
                tar.extractall(out, filter="data")
            for f in release.files.all():
                # The archive was verified as a whole; check each unpacked file against its own row too.
                if sha256_file(unpacked / f.name) != f.sha256:
                    raise CommandError(f"{f.name} in the archive does not match its recorded SHA-256.")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{release}: {out / archive_name} (sha256 {archive_sha}) and {release.files.count()} files in {unpacked}"
            )
        )
