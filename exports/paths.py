"""Where release files live on disk (under EXPORTS_ROOT, default MEDIA_ROOT/releases).

Its own module so that services (which write there) and selectors (which serve verified files
from there) both read it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from exports.models import Release


def releases_root() -> Path:
    return Path(settings.EXPORTS_ROOT or Path(settings.MEDIA_ROOT) / "releases")


def release_dir(release: Release) -> Path:
    return releases_root() / release.dataset.slug / release.version
