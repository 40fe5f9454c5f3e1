"""Reads: release lists, verified file paths, the prototypes a release ships, and the diff between two releases."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import connection
from django.db.models import Count, QuerySet

from catalog.factors import FACTOR_KEYS, RELEASE_FACTOR_ORDER
from catalog.models import Dataset, Image, ImageClass, ReferencePrototype
from catalog.selectors import factor_counts
from curation.models import CuratedImage
from exports import writers
from exports.models import Release, ReleaseStatus
from exports.paths import release_dir, releases_root
from infra.errors import Conflict, DomainError, NotFound
from infra.roles import Role, has_role
from prototypes import selectors as prototype_selectors
from prototypes.models import PrototypeRun

log = logging.getLogger(__name__)


def releases_for(user: Any) -> QuerySet[Release]:
    """Everyone signed in sees published releases; maintainers also see drafts and builds."""
    qs = Release.objects.select_related("dataset", "curation_run", "created_by").order_by(
        "dataset__slug", "-created_at"
    )
    if not has_role(user, Role.MAINTAINER):
        qs = qs.filter(status=ReleaseStatus.PUBLISHED)
    return qs


def release_for(user: Any, release_id: int) -> Release:
    try:
        return releases_for(user).get(pk=release_id)
    except Release.DoesNotExist:
        raise NotFound(f"No release {release_id}.")


class ChecksumMismatch(Conflict):
    code = "checksum_mismatch"


def open_verified_release_file(release: Release, name: str | None) -> tuple[BinaryIO, str, str]:
    """(open file, download name, sha256) of a release file (`name`) or of its archive (`None`).

    The checksum is computed from the very handle that is then served, so a file replaced on
    disk after the check cannot slip through. A file that no longer matches the checksum
    recorded at build time is refused: never served, never published.
    """
    if name is None:
        if not release.archive_path:
            raise NotFound(f"Release {release.version} has no archive yet.")
        path, expected = releases_root() / release.archive_path, release.archive_sha256
        label = Path(release.archive_path).name
    else:
        row = release.files.filter(name=name).first()
        if row is None:
            raise NotFound(f"Release {release.version} has no file {name!r}.")
        path, expected, label = release_dir(release) / row.name, row.sha256, row.name
    try:
        fh = open(path, "rb")  # noqa: SIM115 returned open, closed by the response
    except OSError:
        log.error("release %s: %s is missing on disk", release.pk, path)
        raise ChecksumMismatch(f"{label} of release {release.version} is missing on disk; not sent.")
    h = hashlib.sha256()
    while chunk := fh.read(writers.HASH_CHUNK):
        h.update(chunk)
    if h.hexdigest() != expected:
        fh.close()
        log.error("release %s: %s has sha256 %s, expected %s (tampered?)", release.pk, path, h.hexdigest(), expected)
        raise ChecksumMismatch(
            f"{label} of release {release.version} does not match its recorded SHA-256; it was changed on disk "
            "and is not sent. A maintainer must investigate.",
            details={"expected_sha256": expected},
        )
    fh.seek(0)
    return fh, label, expected


def verify_release_file(release: Release, name: str | None) -> None:
    fh, _, _ = open_verified_release_file(release, name)
    fh.close()


# --- prototypes a release ships -----------------------------------------------------------
def release_prototypes(*, dataset: Dataset, run: PrototypeRun | None) -> tuple[list[str], dict[str, Any]]:
    """The prototypes a release of `dataset` ships, and where they come from (for the datasheet).

    `run` is the dataset's current prototype run (prototypes.selectors.current_run) or None.
    A prototype run's images when the dataset has one (read through prototypes.selectors, the
    only way to read them); else the prototypes a source release published (ImageNet-X's
    prototypical_paths.csv, kept in the catalogue); else the stand-ins the form showed.
    """
    classes = ImageClass.objects.filter(dataset=dataset).order_by("index")
    k = settings.PROTOTYPES_PER_CLASS
    if run is not None:
        names = []
        for cls in classes:
            used, images = prototype_selectors.prototypes_for_class(cls, k=k)
            if used is None or used.pk != run.pk:
                # Another run became current while this release was being written: its files
                # would mix two runs' prototypes and name the wrong one. The build fails; rebuild.
                raise Conflict(
                    f"The current prototype run of {dataset.slug} changed from #{run.pk} during the build.",
                    code="prototype_run_changed",
                )
            names += [img.file_name for img in images]
        return names, {"source": "prototype run", **prototype_run_info(run)}
    releases = list(
        ReferencePrototype.objects.filter(dataset=dataset)
        .values_list("source_release", flat=True)
        .distinct()
        .order_by("-source_release")
    )
    if releases:
        names = list(
            ReferencePrototype.objects.filter(dataset=dataset, source_release=releases[0])
            .order_by("position")
            .values_list("image_class__index", "file_name")
        )
        return [n for _, n in names], {"source": "published with the source release", "release": releases[0]}
    names = []
    for cls in classes:
        _, images = prototype_selectors.prototypes_for_class(cls, k=k)
        names += [img.file_name for img in images]
    return names, {"source": "stand-ins (no prototype run yet): the first readable images of each class"}


def prototype_run_info(run: PrototypeRun) -> dict[str, Any]:
    """What the datasheet says about a prototype run: what was asked for and what was measured.

    (The run's own `source`, model or predictions file, replaces the "prototype run" label in
    the datasheet's Prototypes section, as it always has.)
    """
    info: dict[str, Any] = {
        "run_id": run.pk,
        "source": run.source,
        "model_name": run.model_name,
        "weights": run.weights,
        "weights_id": run.weights_id,
        "weights_sha256": run.weights_sha256,
        "checkpoint": run.checkpoint,
        "seed": run.seed,
        "k": run.k,
        "preprocessing": run.preprocessing,
        "library_versions": run.library_versions,
    }
    if run.finished_at is not None:
        info["finished_at"] = run.finished_at.isoformat()
    return info


# --- diff ----------------------------------------------------------------------------------
def release_diff(*, old: Release, new: Release, limit: int = 200) -> dict[str, Any]:
    """What changed from `old` to `new` (same dataset): computed by the database.

    Images added and removed, per-factor flags gained/lost, top factors changed, and per-factor
    count deltas; `limit` caps the example lists.
    """
    if old.dataset_id != new.dataset_id:
        raise DomainError("Only releases of the same dataset can be compared.", code="different_datasets")
    old_rows = CuratedImage.objects.filter(run_id=old.curation_run_id)
    new_rows = CuratedImage.objects.filter(run_id=new.curation_run_id)
    old_ids = old_rows.values("image_id")
    new_ids = new_rows.values("image_id")
    added = new_rows.exclude(image_id__in=old_ids)
    removed = old_rows.exclude(image_id__in=new_ids)

    def names(qs: QuerySet) -> list[str]:
        return list(
            Image.objects.filter(id__in=qs.values("image_id"))
            .order_by("file_name")
            .values_list("file_name", flat=True)[:limit]
        )

    old_counts, new_counts = factor_counts(old_rows), factor_counts(new_rows)
    old_top, new_top = _top_counts(old_rows), _top_counts(new_rows)
    changed, flag_changes, top_changed = _changed_rows(old.curation_run_id, new.curation_run_id, limit)
    return {
        "old": {"id": old.pk, "version": old.version, "images": old_rows.count()},
        "new": {"id": new.pk, "version": new.version, "images": new_rows.count()},
        "added": {"count": added.count(), "examples": names(added)},
        "removed": {"count": removed.count(), "examples": names(removed)},
        "changed_images": changed["count"],
        "flag_changes": flag_changes,
        "top_factor_changed": top_changed,
        "changed_examples": changed["examples"],
        "factor_count_deltas": {
            k: {"old": old_counts[k], "new": new_counts[k], "delta": new_counts[k] - old_counts[k]}
            for k in RELEASE_FACTOR_ORDER
        },
        "top_factor_count_deltas": {
            k: {"old": old_top.get(k, 0), "new": new_top.get(k, 0), "delta": new_top.get(k, 0) - old_top.get(k, 0)}
            for k in (*RELEASE_FACTOR_ORDER, "")
        },
    }


def _top_counts(rows: QuerySet) -> dict[str, int]:
    return {r["top_factor"]: r["n"] for r in rows.values("top_factor").annotate(n=Count("id")).order_by()}


def _changed_rows(old_run: int, new_run: int, limit: int) -> tuple[dict[str, Any], dict[str, dict[str, int]], int]:
    """Images in both runs whose flags or top factor differ: one join in SQL, streamed."""
    t = CuratedImage._meta.db_table
    img = Image._meta.db_table
    q = connection.ops.quote_name
    cols = ", ".join(f"a.{q(k)}, b.{q(k)}" for k in FACTOR_KEYS)
    differs = " OR ".join(f"a.{q(k)} <> b.{q(k)}" for k in FACTOR_KEYS)
    sql = (
        f"SELECT i.file_name, i.split, a.top_factor, b.top_factor, {cols} "
        f"FROM {t} a JOIN {t} b ON a.image_id = b.image_id JOIN {img} i ON i.id = a.image_id "
        f"WHERE a.run_id = %s AND b.run_id = %s AND ({differs} OR a.top_factor <> b.top_factor) "
        f"ORDER BY i.file_name"
    )
    gained = dict.fromkeys(RELEASE_FACTOR_ORDER, 0)
    lost = dict.fromkeys(RELEASE_FACTOR_ORDER, 0)
    n = top_changed = 0
    examples: list[dict[str, Any]] = []
    if old_run == new_run:
        return {"count": 0, "examples": []}, {k: {"gained": 0, "lost": 0} for k in RELEASE_FACTOR_ORDER}, 0
    with connection.cursor() as cur:
        cur.execute(sql, [old_run, new_run])
        while rows := cur.fetchmany(5000):
            for row in rows:
                n += 1
                file_name, split, old_top, new_top = row[:4]
                plus, minus = [], []
                for i, k in enumerate(FACTOR_KEYS):
                    a, b = row[4 + 2 * i], row[5 + 2 * i]
                    if b and not a:
                        gained[k] += 1
                        plus.append(k)
                    elif a and not b:
                        lost[k] += 1
                        minus.append(k)
                if old_top != new_top:
                    top_changed += 1
                if len(examples) < limit:
                    examples.append(
                        {
                            "file_name": file_name,
                            "split": split,
                            "gained": plus,
                            "lost": minus,
                            "old_top_factor": old_top,
                            "new_top_factor": new_top,
                        }
                    )
    return (
        {"count": n, "examples": examples},
        {k: {"gained": gained[k], "lost": lost[k]} for k in RELEASE_FACTOR_ORDER},
        top_changed,
    )
