from __future__ import annotations

import pytest

from exports import services
from tests.exports.factories import curation_run_from_final, load_imagenet_x


@pytest.fixture
def imagenet_x(db):
    """The first 40 val and 20 train records of the public release, imported as-is."""
    return load_imagenet_x(n_val=40, n_train=20)


@pytest.fixture
def done_run(imagenet_x):
    return curation_run_from_final(imagenet_x)


@pytest.fixture
def build(maintainer, django_capture_on_commit_callbacks):
    """Create (if needed) and build a release synchronously in this process; returns it refreshed."""

    def _build(run, version="1.0.0", release=None, **kw):
        if release is None:
            release = services.release_create(
                dataset=run.dataset, version=version, curation_run=run, created_by=maintainer, **kw
            )
        with django_capture_on_commit_callbacks(execute=False):
            started = services.release_build_start(release_id=release.pk, user=maintainer)
        services.release_build(release_id=started.pk, token=started.build_token)
        release.refresh_from_db()
        return release

    return _build
