"""Image files: cached thumbnails with EXIF orientation, cache headers, the missing-file notice."""

import pytest
from django.urls import reverse
from PIL import Image as PILImage

from catalog.models import Image
from tests.conftest import client_for


@pytest.mark.embedded
def test_thumbnail_applies_exif_orientation_and_is_cached_on_disk(dataset, annotator, settings):
    img = Image.objects.filter(dataset=dataset).first()
    # A 60x20 picture tagged "rotate 90" (EXIF orientation 6) is shown 20 wide, 60 high.
    pic = PILImage.new("RGB", (60, 20), (200, 10, 10))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    pic.save(img.path, exif=exif)
    c = client_for(annotator)
    resp = c.get(reverse("annotator:image", args=[img.id, "thumb"]))
    assert resp.status_code == 200 and resp["Content-Type"] == "image/jpeg"
    assert "max-age" in resp["Cache-Control"] and resp["ETag"]
    body = b"".join(resp.streaming_content)
    from io import BytesIO

    assert PILImage.open(BytesIO(body)).size == (20, 60)
    cached = list((settings.MEDIA_ROOT / "thumbs").rglob("*-thumb.jpg"))
    assert len(cached) == 1
    again = c.get(reverse("annotator:image", args=[img.id, "thumb"]), HTTP_IF_NONE_MATCH=resp["ETag"])
    assert again.status_code == 304


@pytest.mark.embedded
def test_missing_file_answers_a_visible_notice(dataset, annotator):
    img = Image.objects.filter(dataset=dataset).first()
    img.path.unlink()
    resp = client_for(annotator).get(reverse("annotator:image", args=[img.id, "thumb"]))
    assert resp.status_code == 200 and resp["Content-Type"] == "image/svg+xml"
    assert b"file missing" in resp.content and resp["Cache-Control"] == "no-store"


@pytest.mark.embedded
def test_original_on_demand(dataset, annotator):
    img = Image.objects.filter(dataset=dataset).first()
    resp = client_for(annotator).get(reverse("annotator:image", args=[img.id, "full"]))
    assert b"".join(resp.streaming_content) == img.path.read_bytes()


@pytest.mark.embedded
def test_images_need_a_role(dataset, outsider):
    img = Image.objects.filter(dataset=dataset).first()
    assert client_for(outsider).get(reverse("annotator:image", args=[img.id, "thumb"])).status_code == 403
