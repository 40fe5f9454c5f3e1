"""Writes of the exports app, one module per job; re-exported so callers write `services.x`.

- releases.py: create a draft release, publish a built one
- build.py: start a build and build a release's files and archive

Paths on disk live in exports/paths.py (read by selectors too); re-exported here for callers.
"""

from exports.paths import release_dir, releases_root
from exports.services.build import CROISSANT_NAME, MANIFEST_NAME, release_build, release_build_start
from exports.services.releases import normalize_version, release_create, release_publish

__all__ = [
    "CROISSANT_NAME",
    "MANIFEST_NAME",
    "normalize_version",
    "release_build",
    "release_build_start",
    "release_create",
    "release_dir",
    "release_publish",
    "releases_root",
]
