"""A malformed or truncated copy of the release is refused with the file and line named, and
loads nothing. Uses a small copy (the first 100 annotations of each split) to stay fast."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.importers import default_release_path
from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass, ReferencePrototype

pytestmark = pytest.mark.embedded

TABLES = [Dataset, ImageClass, Image, Annotation, AnnotationVersion, ReferencePrototype]
N = 100


@pytest.fixture
def small_release(tmp_path) -> Path:
    src, dst = default_release_path(), tmp_path / "release"
    dst.mkdir()
    for name in [
        "imagenet_labels.txt",
        "imagenet_1k_classes_to_100_metaclasses.csv",
        "filename_label.csv",
        "prototypical_paths.csv",
    ]:
        shutil.copy(src / name, dst / name)
    for split in ["val", "train"]:
        for which in ["multi", "top"]:
            name = f"imagenet_x_{split}_{which}_factor.jsonl"
            with (src / name).open("rb") as f:
                lines = [next(f) for _ in range(N)]
            (dst / name).write_bytes(b"".join(lines))
    return dst


def _replace_line(path: Path, lineno: int, new: bytes) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = new
    path.write_bytes(b"".join(lines))


def _counts() -> list[int]:
    return [m.objects.count() for m in TABLES]


def test_small_copy_imports(small_release, db):
    call_command("import_imagenet_x", path=small_release)
    assert Annotation.objects.count() == 2 * N and ImageClass.objects.count() == 1000
    assert ReferencePrototype.objects.count() == 3000


def test_malformed_line_is_named_and_nothing_is_loaded(small_release, db):
    _replace_line(small_release / "imagenet_x_val_multi_factor.jsonl", 57, b'{"file_name": "x.JPEG", "class": 3,,}\n')
    with pytest.raises(CommandError, match=r"imagenet_x_val_multi_factor\.jsonl line 57: not valid JSON"):
        call_command("import_imagenet_x", path=small_release)
    assert _counts() == [0] * len(TABLES)


def test_truncated_file_is_named_and_nothing_is_loaded(small_release, db):
    p = small_release / "imagenet_x_train_top_factor.jsonl"
    data = p.read_bytes()
    cut = sum(len(line) for line in data.splitlines(keepends=True)[:79]) + 40  # in the middle of line 80
    p.write_bytes(data[:cut])
    with pytest.raises(
        CommandError, match=r"imagenet_x_train_top_factor\.jsonl line 80: not valid JSON \(the file looks truncated\)"
    ):
        call_command("import_imagenet_x", path=small_release)
    assert _counts() == [0] * len(TABLES)


def test_file_missing_its_last_lines_is_refused(small_release, db):
    p = small_release / "imagenet_x_val_top_factor.jsonl"
    p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[:60]))
    with pytest.raises(CommandError, match=r"imagenet_x_val_top_factor\.jsonl ends at line 60 .*truncated"):
        call_command("import_imagenet_x", path=small_release)
    assert _counts() == [0] * len(TABLES)


def test_factor_value_other_than_0_or_1_is_refused(small_release, db):
    p = small_release / "imagenet_x_val_multi_factor.jsonl"
    line = (
        p.read_bytes().splitlines(keepends=True)[11].replace(b'"pose":1', b'"pose":2').replace(b'"pose":0', b'"pose":2')
    )
    _replace_line(p, 12, line)
    with pytest.raises(CommandError, match=r"line 12: factor pose must be 0 or 1, got 2"):
        call_command("import_imagenet_x", path=small_release)
    assert _counts() == [0] * len(TABLES)


def test_missing_key_is_refused(small_release, db):
    p = small_release / "imagenet_x_train_multi_factor.jsonl"
    line = p.read_bytes().splitlines(keepends=True)[4]
    _replace_line(p, 5, line.replace(b'"texture":0,', b"").replace(b'"texture":1,', b""))
    with pytest.raises(
        CommandError, match=r"imagenet_x_train_multi_factor\.jsonl line 5: keys differ .*missing \['texture'\]"
    ):
        call_command("import_imagenet_x", path=small_release)


def test_failed_import_leaves_an_earlier_import_unchanged(small_release, db):
    call_command("import_imagenet_x", path=small_release)
    before = _counts()
    (small_release / "imagenet_x_val_top_factor.jsonl").write_bytes(b"")
    with pytest.raises(CommandError):
        call_command("import_imagenet_x", path=small_release)
    assert _counts() == before


def test_missing_file_is_named(small_release, db):
    (small_release / "prototypical_paths.csv").unlink()
    with pytest.raises(CommandError, match=r"prototypical_paths\.csv: file missing"):
        call_command("import_imagenet_x", path=small_release)


@pytest.mark.postgres
def test_two_imports_at_once_load_the_release_once(small_release, transactional_db, settings):
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    from catalog.services import imagenet_x_import

    # With the dataset row already there, nothing else would make the two runs wait for each other.
    Dataset.objects.create(slug="imagenet-x", name="ImageNet-X")
    results, errors = [], []

    def run() -> None:
        try:
            results.append(imagenet_x_import(path=small_release))
        except Exception as exc:  # collected: a failure in a thread must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(r.created["annotations"] for r in results) == [0, 2 * N]
    assert Annotation.objects.count() == 2 * N and Dataset.objects.count() == 1
