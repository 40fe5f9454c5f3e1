"""ingest_images: every file is decoded fully; bad files are recorded with their reason, never stop the run."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import sklearn.datasets
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from catalog.models import Dataset, Image, ImageClass
from catalog.services import IngestError, images_ingest

pytestmark = pytest.mark.embedded

PHOTO = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"


def _photo(size=(96, 64)) -> PILImage.Image:
    with PILImage.open(PHOTO) as im:
        return im.convert("RGB").resize(size)


def _jpeg_bytes(im: PILImage.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path) -> Path:
    """ImageFolder layout with one good photo and every kind of awkward file."""
    root = tmp_path / "images"
    cls = root / "n03877845"
    other = root / "n02123045"
    cls.mkdir(parents=True)
    other.mkdir()
    good = _jpeg_bytes(_photo())
    (cls / "good.jpg").write_bytes(good)
    (cls / "truncated.jpg").write_bytes(good[: len(good) // 2])  # header intact, pixel data cut
    (cls / "empty.jpg").write_bytes(b"")
    rgba = _photo().convert("RGBA")
    rgba.putalpha(128)
    rgba.save(cls / "alpha.png")
    _photo().convert("CMYK").save(other / "cmyk.jpg", "JPEG")
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a 96x64 file shows as 64x96
    (other / "rotated.jpg").write_bytes(_jpeg_bytes(_photo(), exif=exif.tobytes()))
    (other / "notes.jpg").write_text("this is a text file with an image extension\n")
    (root / ".DS_Store").write_bytes(b"junk")
    return root


def _by_name(slug: str = "mine") -> dict[str, Image]:
    return {i.file_name: i for i in Image.objects.filter(dataset__slug=slug)}


def test_every_file_is_recorded_and_none_stops_the_run(folder, db):
    r = images_ingest(dataset_slug="mine", root=folder)
    imgs = _by_name()
    assert set(imgs) == {"good.jpg", "truncated.jpg", "empty.jpg", "alpha.png", "cmyk.jpg", "rotated.jpg", "notes.jpg"}
    assert (r.added, r.readable, len(r.unreadable)) == (7, 4, 3)
    assert {n for n, i in imgs.items() if i.readable} == {"good.jpg", "alpha.png", "cmyk.jpg", "rotated.jpg"}


def test_unreadable_files_keep_their_reason(folder, db):
    images_ingest(dataset_slug="mine", root=folder)
    imgs = _by_name()
    assert "truncated" in imgs["truncated.jpg"].unreadable_reason
    assert imgs["empty.jpg"].unreadable_reason == "empty file (0 bytes)"
    assert imgs["notes.jpg"].unreadable_reason == "not an image Pillow can identify"
    assert all(imgs[n].width is None for n in ["truncated.jpg", "empty.jpg", "notes.jpg"])


def test_exif_rotated_photo_stores_the_displayed_size(folder, db):
    images_ingest(dataset_slug="mine", root=folder)
    rotated = _by_name()["rotated.jpg"]
    assert (rotated.width, rotated.height) == (64, 96)
    assert (_by_name()["good.jpg"].width, _by_name()["good.jpg"].height) == (96, 64)


def test_alpha_png_and_cmyk_jpeg_are_readable(folder, db):
    images_ingest(dataset_slug="mine", root=folder)
    imgs = _by_name()
    assert imgs["alpha.png"].readable and (imgs["alpha.png"].width, imgs["alpha.png"].height) == (96, 64)
    assert imgs["cmyk.jpg"].readable and imgs["cmyk.jpg"].image_class.name == "n02123045"


def test_sha256_and_relative_path_are_stored(folder, db):
    images_ingest(dataset_slug="mine", root=folder)
    good = _by_name()["good.jpg"]
    assert good.relpath == "n03877845/good.jpg" and good.path == folder.resolve() / "n03877845" / "good.jpg"
    assert good.sha256 == hashlib.sha256((folder / "n03877845" / "good.jpg").read_bytes()).hexdigest()
    assert Dataset.objects.get(slug="mine").root == str(folder.resolve())


def test_folder_names_become_classes_of_a_new_dataset(folder, db):
    images_ingest(dataset_slug="mine", root=folder)
    classes = ImageClass.objects.filter(dataset__slug="mine").order_by("index")
    assert [(c.index, c.name, c.wnid) for c in classes] == [
        (0, "n02123045", "n02123045"),
        (1, "n03877845", "n03877845"),
    ]


def test_rerun_adds_only_new_files(folder, db):
    images_ingest(dataset_slug="mine", root=folder)
    first = {i.id for i in Image.objects.all()}
    _photo((50, 40)).save(folder / "n03877845" / "new.jpg")
    r = images_ingest(dataset_slug="mine", root=folder)
    assert (r.added, r.already_registered) == (1, 7)
    assert first < {i.id for i in Image.objects.all()} and Image.objects.count() == 8
    again = images_ingest(dataset_slug="mine", root=folder)
    assert (again.added, Image.objects.count()) == (0, 8)


def test_flat_folder_with_labels_csv_matches_existing_classes(tmp_path, db):
    ds = Dataset.objects.create(slug="inet", name="inet")
    ImageClass.objects.create(dataset=ds, index=698, wnid="n03877845", name="palace")
    ImageClass.objects.create(dataset=ds, index=281, wnid="n02123045", name="tabby")
    root = tmp_path / "val"
    root.mkdir()
    _photo().save(root / "ILSVRC2012_val_00000001.JPEG", "JPEG")
    _photo().save(root / "ILSVRC2012_val_00000002.JPEG", "JPEG")
    _photo().save(root / "unlisted.JPEG", "JPEG")
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "file_name,label\nILSVRC2012_val_00000001.JPEG,698\nILSVRC2012_val_00000002.JPEG,n02123045\n"
        "ILSVRC2012_val_00000003.JPEG,tabby\n"
    )
    r = images_ingest(dataset_slug="inet", root=root, labels_csv=csv)
    imgs = _by_name("inet")
    assert imgs["ILSVRC2012_val_00000001.JPEG"].image_class.name == "palace"
    assert imgs["ILSVRC2012_val_00000002.JPEG"].image_class.index == 281
    missing = imgs["ILSVRC2012_val_00000003.JPEG"]
    assert not missing.readable and "does not exist" in missing.unreadable_reason
    assert r.ignored == ["unlisted.JPEG"] and "unlisted.JPEG" not in imgs


def test_unknown_label_is_refused_and_nothing_is_written(tmp_path, db):
    ds = Dataset.objects.create(slug="inet", name="inet")
    ImageClass.objects.create(dataset=ds, index=281, wnid="n02123045", name="tabby")
    root = tmp_path / "flat"
    root.mkdir()
    _photo().save(root / "a.jpg")
    csv = tmp_path / "labels.csv"
    csv.write_text("file_name,label\na.jpg,n99999999\n")
    with pytest.raises(IngestError, match="match no class .*n99999999"):
        images_ingest(dataset_slug="inet", root=root, labels_csv=csv)
    assert Image.objects.count() == 0 and ds.classes.count() == 1
    ds.refresh_from_db()
    assert ds.root == ""


def test_command_reports_unreadable_files(folder, db):
    out = io.StringIO()
    call_command("ingest_images", str(folder), dataset="mine", no_progress=True, stdout=out)
    text = out.getvalue()
    assert "unreadable: n03877845/empty.jpg: empty file (0 bytes)" in text
    assert "added 7 file(s) (4 readable, 3 unreadable)" in text


def test_command_refuses_a_missing_folder(tmp_path, db):
    with pytest.raises(CommandError, match="not a folder"):
        call_command("ingest_images", str(tmp_path / "nope"), dataset="mine", no_progress=True)
    assert not Dataset.objects.filter(slug="mine").exists()


def test_files_attach_to_images_that_exist_without_a_file(tmp_path, db):
    # Like ImageNet-X records (imported without pixels) receiving the ImageNet val files later.
    ds = Dataset.objects.create(slug="inet", name="inet")
    palace = ImageClass.objects.create(dataset=ds, index=698, wnid="n03877845", name="palace")
    tabby = ImageClass.objects.create(dataset=ds, index=281, wnid="n02123045", name="tabby")
    known = Image.objects.create(dataset=ds, split="val", image_class=palace, file_name="ILSVRC2012_val_00000001.JPEG")
    other = Image.objects.create(dataset=ds, split="val", image_class=palace, file_name="ILSVRC2012_val_00000002.JPEG")
    root = tmp_path / "val"
    root.mkdir()
    _photo().save(root / "ILSVRC2012_val_00000001.JPEG", "JPEG")
    _photo().save(root / "ILSVRC2012_val_00000002.JPEG", "JPEG")
    csv = tmp_path / "labels.csv"
    csv.write_text("file_name,label\nILSVRC2012_val_00000001.JPEG,698\nILSVRC2012_val_00000002.JPEG,281\n")
    r = images_ingest(dataset_slug="inet", root=root, labels_csv=csv)
    assert (r.added, r.attached, Image.objects.count()) == (2, 2, 2)
    known.refresh_from_db()
    other.refresh_from_db()
    assert (
        known.readable and known.relpath == "ILSVRC2012_val_00000001.JPEG" and (known.width, known.height) == (96, 64)
    )
    assert r.class_mismatches == ["ILSVRC2012_val_00000002.JPEG"] and other.image_class == palace != tabby
