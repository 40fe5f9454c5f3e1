"""Demo data of exports: v1.0.0 of the demo set and of the ImageNet-X import (idempotent).

Called by `manage.py demo_setup` after the curation demo. A dataset without a done curation run
is skipped with a note (run curation, then demo_setup again); a published v1.0.0 is left as it is.
The build runs here, in-process, so that the demo needs no worker.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F

from catalog.models import Dataset
from curation.models import CurationRun
from exports import services
from exports.models import Release, ReleaseStatus

DEMO_VERSION = "1.0.0"
DEMO_DATASETS = ("demo", "imagenet-x")


def _maintainer() -> Any:
    User = get_user_model()
    return (
        User.objects.filter(username="maintainer").first()
        or User.objects.filter(groups__name="maintainer").order_by("id").first()
        or User.objects.filter(is_superuser=True).order_by("id").first()
    )


def setup(*, stdout: Any) -> None:
    user = _maintainer()
    if user is None:
        stdout.write("  exports: no maintainer account; releases skipped.")
        return
    for slug in DEMO_DATASETS:
        dataset = Dataset.objects.filter(slug=slug).first()
        if dataset is None:
            stdout.write(f"  exports: no dataset {slug!r}; skipped.")
            continue
        release = Release.objects.filter(dataset=dataset, version=DEMO_VERSION).first()
        if release is not None and release.status == ReleaseStatus.PUBLISHED:
            stdout.write(f"  exports: {release} is already published; nothing changed.")
            continue
        if release is None:
            run = (
                CurationRun.objects.filter(dataset=dataset, status=CurationRun.Status.DONE)
                .order_by(F("finished_at").desc(nulls_last=True), "-id")
                .first()
            )
            if run is None:
                stdout.write(f"  exports: {slug} has no done curation run yet; run curation, then demo_setup again.")
                continue
            release = services.release_create(
                dataset=dataset,
                version=DEMO_VERSION,
                curation_run=run,
                created_by=user,
                notes=f"Demo release of {dataset.name}, built from curation run #{run.pk}.",
            )
        started = services.release_build_start(release_id=release.pk, user=user, enqueue=False)
        built = services.release_build(release_id=release.pk, token=started.build_token)
        if built is None or built.status != ReleaseStatus.BUILT:
            release.refresh_from_db()
            stdout.write(f"  exports: building {release} failed: {release.error}")
            continue
        published = services.release_publish(release_id=release.pk, user=user)
        stdout.write(
            f"  exports: published {published} ({published.total:,} images, sha256 {published.archive_sha256})."
        )
