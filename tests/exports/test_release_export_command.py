"""manage.py release_export VERSION --out DIR."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from exports import services
from tests.exports.factories import package_lines

pytestmark = pytest.mark.embedded  # no PostgreSQL-only feature: also runs on the embedded default


@pytest.fixture
def published(done_run, build, maintainer):
    return services.release_publish(release_id=build(done_run).pk, user=maintainer)


def test_release_export_writes_the_archive_and_the_unpacked_files(published, tmp_path):
    call_command("release_export", "v1.0.0", "--out", str(tmp_path / "out"))
    folder = tmp_path / "out" / "imagenet-x-1.0.0"
    assert (tmp_path / "out" / "imagenet-x-1.0.0.tar.gz").is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted(published.files.values_list("name", flat=True))
    assert (folder / "imagenet_x_train_top_factor.jsonl").read_bytes() == b"".join(package_lines("train", "top", 20))


def test_release_export_of_an_unknown_version_fails_clearly(published, tmp_path):
    with pytest.raises(CommandError, match="No published release 9.9.9"):
        call_command("release_export", "9.9.9", "--out", str(tmp_path))


def test_release_export_refuses_a_tampered_archive(published, tmp_path):
    archive = services.releases_root() / published.archive_path
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(CommandError, match="SHA-256"):
        call_command("release_export", "1.0.0", "--out", str(tmp_path / "out"), "--dataset", "imagenet-x")
    assert not (tmp_path / "out" / "imagenet-x-1.0.0").exists()
