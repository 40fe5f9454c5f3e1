"""Writes of a release's build: start it (fresh token, enqueued by name), write its files, record them.

The build streams the curated rows from the database (`.iterator(chunk_size)`) into files in a
temporary folder next to the final one, packs them into one reproducible archive, then moves
the folder into place with one atomic rename and records the result in one transaction. A
worker that dies anywhere in between leaves at most a temporary folder (removed by the next
attempt) and a release still marked `building`: never a published or half-written release.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from catalog.factors import RELEASE_FACTOR_ORDER
from catalog.models import ImageClass, Split
from curation.models import CuratedImage
from exports import datasheet, writers
from exports.models import Release, ReleaseFile, ReleaseImmutable, ReleaseStatus
from exports.paths import release_dir, releases_root
from exports.selectors import release_prototypes
from exports.services.releases import check_run_usable, locked_release
from infra.enqueue import enqueue_task
from infra.errors import Conflict
from prototypes import selectors as prototype_selectors
from prototypes.models import PrototypeRun

log = logging.getLogger(__name__)

CROISSANT_NAME = "croissant.json"
MANIFEST_NAME = "MANIFEST"


def _chunk_size() -> int:
    # Rows fetched per round trip of the server-side cursor; also how often progress is saved.
    return int(settings.EXPORTS_CHUNK_SIZE)


def _stale_after() -> timedelta:
    # A `building` release whose worker has not reported for this long is presumed dead and may
    # be built again (each chunk reports, so a live worker is never this quiet).
    return timedelta(seconds=int(settings.EXPORTS_BUILD_STALE_SECONDS))


def release_build_start(*, release_id: int, user: Any, enqueue: bool = True) -> Release:
    """Mark the release `building` with a fresh token and enqueue the build (after commit).

    `enqueue=False` leaves the build to the caller (release_build with the returned token),
    for command-line use without a worker.
    """
    with transaction.atomic():
        release = locked_release(release_id)
        if release.status == ReleaseStatus.PUBLISHED:
            raise ReleaseImmutable(f"Release {release.version} is published and cannot be rebuilt.")
        if release.status == ReleaseStatus.BUILDING:
            last = release.heartbeat_at or release.updated_at
            if timezone.now() - last < _stale_after():
                raise Conflict(
                    f"Release {release.version} is being built ({release.processed}/{release.total}).",
                    code="already_building",
                )
            log.warning(
                "release %s: build token %s looks dead since %s; starting again", release.pk, release.build_token, last
            )
        check_run_usable(release.curation_run, release.dataset)
        ReleaseFile.objects.filter(release=release).delete()
        release.status = ReleaseStatus.BUILDING
        release.build_token = uuid.uuid4().hex
        release.error = ""
        release.stage = "queued"
        release.processed = 0
        release.total = CuratedImage.objects.filter(run_id=release.curation_run_id).count()
        release.archive_path = release.archive_sha256 = ""
        release.archive_size = None
        release.built_at = None
        release.prototype_run = None  # set again by the build, from the run its files describe
        release.heartbeat_at = timezone.now()
        release.save()
        token = release.build_token
        if enqueue:
            enqueue_task("exports.build_release", release.pk, token)
    return release


class _StaleBuild(Exception):
    """The release's build token changed: another attempt owns the build now."""


def _report(release_id: int, token: str, **fields: Any) -> None:
    updated = Release.objects.filter(pk=release_id, build_token=token, status=ReleaseStatus.BUILDING).update(
        heartbeat_at=timezone.now(), **fields
    )
    if not updated:
        raise _StaleBuild()


def release_build(*, release_id: int, token: str) -> Release | None:
    """Build the files and archive of a `building` release (the Celery task's one call).

    Returns None when the token is no longer the release's (a newer attempt owns it).
    """
    release = Release.objects.select_related("dataset", "curation_run").get(pk=release_id)
    if release.status != ReleaseStatus.BUILDING or release.build_token != token:
        log.info("release %s: build %s is stale (status %s), nothing to do", release_id, token, release.status)
        return None
    root = releases_root()
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(f".build-{release.pk}-*"):
            # Left by an attempt that died; the token check above means it is not running any more.
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{release.pk}-", dir=root))
        prototype_run = prototype_selectors.current_run(dataset_id=release.dataset_id)
        files = _write_files(release, tmp, token, prototype_run)
        archive_name = f"{release.base_name}.tar.gz"
        _report(release.pk, token, stage="packing the archive")
        writers.write_deterministic_targz(tmp / archive_name, tmp, [name for name, _, _ in files], release.base_name)
        archive_sha = writers.sha256_file(tmp / archive_name)
        archive_size = (tmp / archive_name).stat().st_size
        final = release_dir(release)
        with transaction.atomic():
            locked = locked_release(release.pk)
            if locked.status != ReleaseStatus.BUILDING or locked.build_token != token:
                raise _StaleBuild()
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # an earlier build of this unpublished release
                shutil.rmtree(final)
            os.replace(tmp, final)  # one atomic rename: the folder is complete or absent
            ReleaseFile.objects.bulk_create(
                [ReleaseFile(release=locked, name=name, sha256=sha, size=size) for name, sha, size in files]
            )
            locked.status = ReleaseStatus.BUILT
            locked.stage = "built"
            locked.processed = locked.total
            locked.archive_path = str((final / archive_name).relative_to(root))
            locked.archive_sha256 = archive_sha
            locked.archive_size = archive_size
            locked.prototype_run = prototype_run
            locked.built_at = timezone.now()
            locked.heartbeat_at = locked.built_at
            locked.save()
        return locked
    except _StaleBuild:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("release %s: build %s superseded by a newer attempt", release_id, token)
        return None
    except Exception as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        log.exception("release %s: build failed", release_id)
        Release.objects.filter(pk=release_id, build_token=token, status=ReleaseStatus.BUILDING).update(
            status=ReleaseStatus.FAILED,
            stage="failed",
            error=f"{type(exc).__name__}: {exc}"[:2000],
            heartbeat_at=timezone.now(),
        )
        return None


def _split_counts(run_id: int) -> dict[str, int]:
    rows = CuratedImage.objects.filter(run_id=run_id).values("image__split").annotate(n=Count("id")).order_by()
    return {r["image__split"]: r["n"] for r in rows}


def _write_files(
    release: Release, out: Path, token: str, prototype_run: PrototypeRun | None
) -> list[tuple[str, str, int]]:
    """Write every release file into `out`; returns (name, sha256, size) sorted by name.

    `prototype_run`: the dataset's current prototype run (None: the source release's or stand-ins).
    """
    run = release.curation_run
    dataset = release.dataset
    chunk = _chunk_size()
    names: list[str] = []

    classes = (
        ImageClass.objects.filter(dataset=dataset).order_by("index").values_list("index", "wnid", "name", "meta_label")
    )
    n_classes = writers.write_classes_csv(out / "classes.csv", classes.iterator(chunk_size=chunk))
    names.append("classes.csv")
    proto_names, proto_info = release_prototypes(dataset=dataset, run=prototype_run)
    n_prototypes = writers.write_prototypes_csv(out / "prototypical_paths.csv", proto_names)
    names.append("prototypical_paths.csv")
    _report(release.pk, token, stage="classes and prototypes written")

    per_split = _split_counts(run.pk)
    split_stats: dict[str, dict[str, Any]] = {}
    processed = 0
    columns = (
        "image__file_name",
        "image__image_class__index",
        *RELEASE_FACTOR_ORDER,
        "justification",
        "one_word",
        "top_factor",
    )
    n_flags = len(RELEASE_FACTOR_ORDER)
    for split in Split.values:
        if not per_split.get(split):
            continue
        _report(release.pk, token, stage=f"writing {split} annotations")
        writer = writers.ImageNetXSplitWriter(out, split)
        try:
            # Image id order = the order images were catalogued; the ImageNet-X importer keeps the
            # published files' line order, so exporting the import reproduces them byte for byte.
            rows = (
                CuratedImage.objects.filter(run_id=run.pk, image__split=split)
                .order_by("image_id")
                .values_list(*columns)
            )
            for i, row in enumerate(rows.iterator(chunk_size=chunk), start=1):
                writer.write(row[0], row[1], row[2 : 2 + n_flags], row[2 + n_flags], row[3 + n_flags], row[4 + n_flags])
                if i % chunk == 0:
                    _report(release.pk, token, processed=processed + i)
        finally:
            writer.close()
        processed += writer.count
        _report(release.pk, token, processed=processed)
        names += [writer.multi_name, writer.top_name]
        split_stats[split] = {
            "images": writer.count,
            "multi_factor_counts": writer.multi_counts,
            "top_factor_counts": writer.top_counts,
            "images_without_top_factor": writer.no_top_factor,
        }

    _report(release.pk, token, stage="datasheet and metadata")
    sheet = datasheet.build_datasheet(
        release=release,
        split_stats=split_stats,
        n_classes=n_classes,
        n_prototypes=n_prototypes,
        prototypes=proto_info,
    )
    writers.write_json(out / "datasheet.json", sheet)
    (out / "DATASHEET.md").write_text(writers.datasheet_markdown(sheet), encoding="utf-8")
    names += ["datasheet.json", "DATASHEET.md"]

    described = [(n, writers.sha256_file(out / n), (out / n).stat().st_size) for n in sorted(names)]
    annotation_files = [
        (f"imagenet_x_{s}_{kind}_factor.jsonl", f"{s}_{kind}_factor") for s in split_stats for kind in ("multi", "top")
    ]
    writers.write_json(
        out / CROISSANT_NAME,
        writers.croissant_metadata(
            name=f"{dataset.name} ({dataset.slug})",
            description=(dataset.description or f"Factor-of-variation annotations of {dataset.name}.")
            + (f"\n\n{release.notes}" if release.notes else ""),
            version=release.version,
            license_id=release.license,
            date_published=release.created_at.date().isoformat(),
            cite_as=datasheet.citation(release),
            url=f"releases/{dataset.slug}/{release.version}",
            files=described,
            annotation_files=annotation_files,
        ),
    )
    names.append(CROISSANT_NAME)
    entries = [(n, writers.sha256_file(out / n)) for n in names]
    writers.write_manifest(out / MANIFEST_NAME, entries)
    names.append(MANIFEST_NAME)
    return [(n, writers.sha256_file(out / n), (out / n).stat().st_size) for n in sorted(names)]
