"""A published release cannot change: the model layer refuses, and so does the database."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from exports import services
from exports.models import Release, ReleaseFile, ReleaseImmutable, ReleaseStatus


@pytest.fixture
def published(done_run, build, maintainer):
    release = build(done_run)
    return services.release_publish(release_id=release.pk, user=maintainer)


@pytest.mark.embedded
def test_publishing_a_built_release_records_who_and_when(published, maintainer):
    published.refresh_from_db()
    assert published.status == ReleaseStatus.PUBLISHED
    assert published.published_by == maintainer and published.published_at is not None


@pytest.mark.embedded
def test_saving_a_published_release_is_refused(published):
    published.notes = "changed"
    with pytest.raises(ReleaseImmutable):
        published.save()
    published.refresh_from_db()
    assert published.notes == ""


@pytest.mark.embedded
def test_deleting_a_published_release_is_refused(published):
    with pytest.raises(ReleaseImmutable):
        published.delete()
    assert Release.objects.filter(pk=published.pk).exists()


@pytest.mark.embedded
def test_queryset_update_of_a_published_release_is_refused(published):
    with pytest.raises(ReleaseImmutable):
        Release.objects.filter(pk=published.pk).update(notes="bulk")
    published.refresh_from_db()
    assert published.notes == ""


@pytest.mark.embedded
def test_changing_a_file_of_a_published_release_is_refused(published):
    f = published.files.get(name="MANIFEST")
    f.sha256 = "0" * 64
    with pytest.raises(ReleaseImmutable):
        f.save()
    with pytest.raises(ReleaseImmutable):
        f.delete()
    with pytest.raises(ReleaseImmutable):
        ReleaseFile.objects.filter(release=published).delete()
    with pytest.raises(ReleaseImmutable):
        ReleaseFile.objects.create(release=published, name="extra.txt", sha256="a" * 64, size=1)
    assert published.files.count() == 10


@pytest.mark.embedded
def test_building_a_published_release_again_is_refused(published, maintainer):
    with pytest.raises(ReleaseImmutable):
        services.release_build_start(release_id=published.pk, user=maintainer)
    published.refresh_from_db()
    assert published.status == ReleaseStatus.PUBLISHED


@pytest.mark.postgres
def test_database_trigger_refuses_raw_sql_update_of_a_published_release(published):
    with pytest.raises(IntegrityError, match="published and immutable"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("UPDATE exports_release SET notes = 'raw' WHERE id = %s", [published.pk])
    published.refresh_from_db()
    assert published.notes == ""


@pytest.mark.postgres
def test_database_trigger_refuses_raw_sql_delete_of_a_published_release(published):
    with pytest.raises(IntegrityError, match="published release and is immutable"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM exports_releasefile WHERE release_id = %s", [published.pk])
    with pytest.raises(IntegrityError, match="published and immutable"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM exports_release WHERE id = %s", [published.pk])
    assert Release.objects.filter(pk=published.pk).exists() and published.files.count() == 10


@pytest.mark.postgres
def test_database_trigger_refuses_raw_sql_update_of_a_published_file(published):
    with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("UPDATE exports_releasefile SET sha256 = %s WHERE release_id = %s", ["0" * 64, published.pk])
    assert "0" * 64 not in set(published.files.values_list("sha256", flat=True))


@pytest.mark.postgres
def test_database_trigger_allows_changes_before_publishing(done_run, build):
    release = build(done_run)
    with connection.cursor() as cur:
        cur.execute("UPDATE exports_release SET notes = 'fine' WHERE id = %s", [release.pk])
    release.refresh_from_db()
    assert release.notes == "fine"
