"""Image files: cached thumbnails with EXIF orientation, cache headers, the missing-file notice."""

import pytest
from django.urls import reverse
from PIL import Image as PILImage

from catalog.models import Image
from tests.conftest import client_for


@pytest.mark.embedded
def test_thumbnail_applies_exif_orientation_and_is_cached_on_disk(dataset, reviewer, settings):
    img = Image.objects.filter(dataset=dataset).first()
    # A 60x20 picture tagged "rotate 90" (EXIF orientation 6) is shown 20 wide, 60 high.
    pic = PILImage.new("RGB", (60, 20), (200, 10, 10))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    pic.save(img.path, exif=exif)
    c = client_for(reviewer)
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
def test_missing_file_answers_a_visible_notice(dataset, reviewer):
    img = Image.objects.filter(dataset=dataset).first()
    img.path.unlink()
    resp = client_for(reviewer).get(reverse("annotator:image", args=[img.id, "thumb"]))
    assert resp.status_code == 200 and resp["Content-Type"] == "image/svg+xml"
    assert b"file missing" in resp.content and resp["Cache-Control"] == "no-store"


@pytest.mark.embedded
def test_original_on_demand(dataset, reviewer):
    img = Image.objects.filter(dataset=dataset).first()
    resp = client_for(reviewer).get(reverse("annotator:image", args=[img.id, "full"]))
    assert b"".join(resp.streaming_content) == img.path.read_bytes()


@pytest.mark.embedded
def test_images_need_a_role(dataset, outsider):
    img = Image.objects.filter(dataset=dataset).first()
    assert client_for(outsider).get(reverse("annotator:image", args=[img.id, "thumb"])).status_code == 403


@pytest.mark.embedded
def test_an_annotator_sees_only_its_samples_and_their_prototypes(campaign, annotator, other_annotator):
    from annotator.models import Assignment
    from annotator.services import assignment_next

    lease = assignment_next(campaign_id=campaign.id, user=annotator)
    c = client_for(annotator)
    c.get(reverse("annotator:assignment", args=[lease.pk]))  # the form records the prototypes it shows
    lease.refresh_from_db()
    assert c.get(reverse("annotator:image", args=[lease.image_id, "thumb"])).status_code == 200
    for pid in lease.prototype_image_ids:
        assert c.get(reverse("annotator:image", args=[pid, "thumb"])).status_code == 200
    shown = {lease.image_id, *lease.prototype_image_ids}
    other = Image.objects.filter(dataset=campaign.dataset).exclude(pk__in=shown).first()
    assert c.get(reverse("annotator:image", args=[other.pk, "full"])).status_code == 404
    assert not Assignment.objects.filter(annotator=other_annotator).exists()
    assert client_for(other_annotator).get(reverse("annotator:image", args=[lease.image_id, "full"])).status_code == 404


@pytest.mark.embedded
def test_full_image_does_not_carry_its_file_name(campaign, annotator):
    from annotator.services import assignment_next

    lease = assignment_next(campaign_id=campaign.id, user=annotator)
    resp = client_for(annotator).get(reverse("annotator:image", args=[lease.image_id, "full"]))
    assert resp.status_code == 200 and "Content-Disposition" not in resp
    assert lease.image.file_name.encode() not in b"".join(str(v).encode() for v in resp.headers.values())


@pytest.mark.embedded
def test_a_prototype_url_of_a_lease_is_checked_by_that_lease_alone(campaign, annotator, other_annotator):
    """The API's prototype URLs carry their lease (?a=): the permission check is one read of
    that lease, whatever else the annotator was shown. Someone else's lease, or a malformed one,
    falls back to the full check: no image is shown that was not shown to them. The form keeps
    plain URLs: a browser caches a class's prototypes across its leases (a per-lease URL would
    fetch them again for every image)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotator.models import Assignment
    from annotator.services import assignment_next

    lease = assignment_next(campaign_id=campaign.id, user=annotator)
    c = client_for(annotator)
    form = c.get(reverse("annotator:assignment", args=[lease.pk])).content.decode()
    lease.refresh_from_db()
    pid = lease.prototype_image_ids[0]
    plain = reverse("annotator:image", args=[pid, "thumb"])
    assert f'src="{plain}"' in form  # what the form asks for: the same URL for every lease
    url = f"{plain}?a={lease.pk}"
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(annotator)
    payload = api.post(f"/api/annotate/campaigns/{campaign.id}/next").json()  # the held lease
    assert payload["id"] == lease.pk
    assert payload["prototypes"][0]["thumb_url"] == url
    with CaptureQueriesContext(connection) as q:
        assert c.get(url).status_code == 200
    reads = [x["sql"] for x in q.captured_queries if Assignment._meta.db_table in x["sql"]]
    assert len(reads) == 1 and "prototype_image_ids" in reads[0], reads

    theirs = assignment_next(campaign_id=campaign.id, user=other_annotator)
    other = client_for(other_annotator)
    for bad in (lease.pk, "x", "-1", "99999999999999999999", "١٢"):
        # a lease that is not theirs, or no lease at all: only what their own leases showed
        shown = {theirs.image_id, *(theirs.prototype_image_ids or [])}
        r = other.get(f"{reverse('annotator:image', args=[lease.image_id, 'thumb'])}?a={bad}")
        assert r.status_code == (200 if lease.image_id in shown else 404), bad
