"""exports.demo.setup publishes v1.0.0 once a done curation run exists, and is idempotent."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group

from exports import demo
from exports.models import Release, ReleaseStatus
from tests.exports.factories import curation_run_from_final

pytestmark = pytest.mark.embedded  # no PostgreSQL-only feature: also runs on the embedded default


def test_demo_skips_datasets_without_a_done_curation_run(imagenet_x, maintainer):
    out = io.StringIO()
    demo.setup(stdout=out)
    assert "no done curation run" in out.getvalue()
    assert not Release.objects.exists()


def test_demo_publishes_v1_and_a_second_run_changes_nothing(imagenet_x, django_user_model):
    user = django_user_model.objects.create_user("maintainer", password="x")
    user.groups.add(Group.objects.get_or_create(name="maintainer")[0])
    curation_run_from_final(imagenet_x)
    demo.setup(stdout=io.StringIO())
    release = Release.objects.get(dataset=imagenet_x, version="1.0.0")
    assert release.status == ReleaseStatus.PUBLISHED and release.created_by == user
    before = (release.archive_sha256, release.updated_at)
    out = io.StringIO()
    demo.setup(stdout=out)
    release.refresh_from_db()
    assert (release.archive_sha256, release.updated_at) == before
    assert "already published" in out.getvalue() and Release.objects.count() == 1
