"""Pages and API: role checks on every page and endpoint, downloads verified by checksum."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse

from exports import services
from exports.models import Release, ReleaseStatus
from tests.conftest import client_for


@pytest.fixture
def published(done_run, build, maintainer):
    release = build(done_run)
    return services.release_publish(release_id=release.pk, user=maintainer)


@pytest.fixture
def built(done_run, build):
    return build(done_run, version="2.0.0-rc.1")


def _get_pages(release, other):
    return [
        reverse("exports:list"),
        reverse("exports:detail", args=[release.pk]),
        reverse("exports:archive", args=[release.pk]),
        reverse("exports:file", args=[release.pk, "datasheet.json"]),
        reverse("exports:diff") + f"?old={other.pk}&new={release.pk}",
        reverse("exports-api:list"),
        reverse("exports-api:detail", args=[release.pk]),
        reverse("exports-api:archive", args=[release.pk]),
        reverse("exports-api:file", args=[release.pk, "MANIFEST"]),
        reverse("exports-api:diff") + f"?old={other.pk}&new={release.pk}",
    ]


@pytest.fixture
def two_published(published, done_run, build, maintainer):
    second = build(done_run, version="1.1.0")
    return published, services.release_publish(release_id=second.pk, user=maintainer)


def test_anonymous_users_are_sent_to_login_or_refused(client, two_published):
    old, new = two_published
    for url in _get_pages(new, old):
        r = client.get(url)
        if "/api/" in url:
            assert r.status_code in (401, 403), url
        else:
            assert r.status_code == 302 and "/accounts/login/" in r["Location"], url
    assert client.get(reverse("exports:new")).status_code == 302


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("who", ["annotator", "reviewer", "outsider", "maintainer"])
def test_everyone_signed_in_lists_and_downloads_published_releases(request, two_published, who):
    user = request.getfixturevalue(who)
    old, new = two_published
    c = client_for(user)
    pages = dict(zip(("list", "detail", "archive", "file", "diff"), _get_pages(new, old)[:5], strict=True))
    apis = dict(zip(("list", "detail", "archive", "file", "diff"), _get_pages(new, old)[5:], strict=True))
    responses = {url: c.get(url) for url in _get_pages(new, old)}
    assert all(r.status_code == 200 for r in responses.values()), {u: r.status_code for u, r in responses.items()}
    listing = responses[pages["list"]].content.decode()
    assert "1.0.0" in listing and "1.1.0" in listing
    assert new.archive_sha256 in responses[pages["detail"]].content.decode()
    bodies = {kind: _body(responses[pages[kind]]) for kind in ("archive", "file")}  # a stream reads once
    for kind, sha in (("archive", new.archive_sha256), ("file", new.files.get(name="datasheet.json").sha256)):
        assert responses[pages[kind]]["X-Checksum-SHA256"] == sha == hashlib.sha256(bodies[kind]).hexdigest()
    assert json.loads(bodies["file"])["version"] == "1.1.0"
    assert "v1.0.0 → v1.1.0" in responses[pages["diff"]].content.decode()
    assert {r["version"] for r in responses[apis["list"]].json()} == {"1.0.0", "1.1.0"}
    detail = responses[apis["detail"]].json()
    assert (detail["version"], detail["status"], detail["archive_sha256"]) == ("1.1.0", "published", new.archive_sha256)
    assert hashlib.sha256(_body(responses[apis["archive"]])).hexdigest() == new.archive_sha256
    manifest = _body(responses[apis["file"]]).decode()
    assert "datasheet.json" in manifest and new.files.get(name="datasheet.json").sha256 in manifest
    assert responses[apis["diff"]].json()["new"]["version"] == "1.1.0"


@pytest.mark.parametrize("who", ["annotator", "reviewer", "outsider"])
def test_only_maintainers_create_build_and_publish(request, built, done_run, who):
    c = client_for(request.getfixturevalue(who))
    c.get(reverse("exports:list"))
    assert c.get(reverse("exports:new")).status_code == 403
    assert c.post(reverse("exports:build", args=[built.pk])).status_code == 403
    assert c.post(reverse("exports:publish", args=[built.pk])).status_code == 403
    api = client_for(request.getfixturevalue(who))
    body = {"dataset": "imagenet-x", "version": "3.0.0", "curation_run": done_run.pk}
    assert api.post(reverse("exports-api:list"), body, content_type="application/json").status_code == 403
    assert api.post(reverse("exports-api:build", args=[built.pk])).status_code == 403
    assert api.post(reverse("exports-api:publish", args=[built.pk])).status_code == 403
    built.refresh_from_db()
    assert built.status == ReleaseStatus.BUILT
    assert not Release.objects.filter(version="3.0.0").exists()


@pytest.mark.parametrize("who", ["annotator", "reviewer", "outsider"])
def test_unpublished_releases_are_hidden_from_non_maintainers(request, built, who):
    c = client_for(request.getfixturevalue(who))
    assert "2.0.0-rc.1" not in c.get(reverse("exports:list")).content.decode()
    for name in ("exports:detail", "exports:archive"):
        r = c.get(reverse(name, args=[built.pk]))
        assert (
            r.status_code == 404
            and "2.0.0-rc.1" not in r.content.decode()
            and built.archive_sha256 not in r.content.decode()
        )
    r = c.get(reverse("exports-api:detail", args=[built.pk]))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_maintainer_creates_builds_and_publishes_from_the_pages(maintainer, done_run, celery_worker):
    c = client_for(maintainer)
    page = c.get(reverse("exports:new"))
    token = page.cookies["csrftoken"].value
    r = c.post(
        reverse("exports:new"),
        {
            "dataset": "imagenet-x",
            "version": "1.0.0",
            "curation_run": done_run.pk,
            "license": "CC-BY-NC-4.0",
            "notes": "First <b>release</b>",
            "csrfmiddlewaretoken": token,
        },
    )
    release = Release.objects.get(version="1.0.0")
    assert r.status_code == 302 and r["Location"] == reverse("exports:detail", args=[release.pk])
    r = c.post(reverse("exports:build", args=[release.pk]), {"csrfmiddlewaretoken": token})
    assert r.status_code == 302 and r["Location"] == reverse("exports:detail", args=[release.pk])
    import time

    for _ in range(200):
        release.refresh_from_db()
        if release.status != ReleaseStatus.BUILDING:
            break
        time.sleep(0.05)
    assert release.status == ReleaseStatus.BUILT, release.error
    c.post(reverse("exports:publish", args=[release.pk]), {"csrfmiddlewaretoken": token})
    release.refresh_from_db()
    assert release.status == ReleaseStatus.PUBLISHED
    html = c.get(reverse("exports:detail", args=[release.pk])).content.decode()
    assert "First &lt;b&gt;release&lt;/b&gt;" in html and release.archive_sha256 in html


def test_create_page_shows_the_refusal_of_a_duplicate_version(maintainer, published, done_run):
    c = client_for(maintainer)
    token = c.get(reverse("exports:new")).cookies["csrftoken"].value
    r = c.post(
        reverse("exports:new"),
        {
            "dataset": "imagenet-x",
            "version": "1.0.0",
            "curation_run": done_run.pk,
            "license": "CC-BY-NC-4.0",
            "csrfmiddlewaretoken": token,
        },
    )
    assert r.status_code == 400 and "already has a release 1.0.0" in r.content.decode()
    assert Release.objects.count() == 1


def test_api_create_refuses_a_failed_run_with_the_json_error_shape(maintainer, imagenet_x):
    from tests.exports.factories import curation_run_from_final

    run = curation_run_from_final(imagenet_x, status="failed", error="boom")
    c = client_for(maintainer)
    c.get(reverse("exports:list"))
    r = c.post(
        reverse("exports-api:list"),
        {"dataset": "imagenet-x", "version": "1.0.0", "curation_run": run.pk},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=c.cookies["csrftoken"].value,
    )
    assert r.status_code == 409  # the run's state, not the request, is the problem
    assert r.json()["error"]["code"] == "curation_run_failed" and "failed" in r.json()["error"]["message"]
    assert not Release.objects.exists()


def test_downloaded_file_matches_its_checksum(annotator, published):
    c = client_for(annotator)
    r = c.get(reverse("exports:file", args=[published.pk, "imagenet_x_val_top_factor.jsonl"]))
    body = b"".join(r.streaming_content)
    assert hashlib.sha256(body).hexdigest() == r["X-Checksum-SHA256"]
    assert r["X-Checksum-SHA256"] == published.files.get(name="imagenet_x_val_top_factor.jsonl").sha256


def test_tampered_file_is_refused_not_sent(annotator, published):
    path = services.release_dir(published) / "imagenet_x_val_top_factor.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"pose":0', b'"pose":1', 1))
    c = client_for(annotator)
    r = c.get(reverse("exports:file", args=[published.pk, "imagenet_x_val_top_factor.jsonl"]))
    assert r.status_code == 409 and "does not match its recorded SHA-256" in r.content.decode()
    r = c.get(reverse("exports-api:file", args=[published.pk, "imagenet_x_val_top_factor.jsonl"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "checksum_mismatch"
    manifest = c.get(reverse("exports:file", args=[published.pk, "MANIFEST"]))
    assert manifest.status_code == 200 and b"imagenet_x_val_top_factor.jsonl" in _body(manifest)


def test_tampered_archive_is_refused_and_blocks_publishing(maintainer, built):
    archive = services.releases_root() / built.archive_path
    archive.write_bytes(archive.read_bytes() + b"x")
    c = client_for(maintainer)
    r = c.get(reverse("exports:archive", args=[built.pk]))
    assert r.status_code == 409 and "does not match its recorded SHA-256" in r.content.decode()
    with pytest.raises(Exception, match="SHA-256"):
        services.release_publish(release_id=built.pk, user=maintainer)
    built.refresh_from_db()
    assert built.status == ReleaseStatus.BUILT


def test_diff_page_and_json_show_the_changes(annotator, two_published):
    old, new = two_published
    c = client_for(annotator)
    html = c.get(reverse("exports:diff") + f"?old={old.pk}&new={new.pk}").content.decode()
    assert "v1.0.0 → v1.1.0" in html and "images added" in html
    data = c.get(reverse("exports-api:diff") + f"?old={old.pk}&new={new.pk}").json()
    assert data["added"]["count"] == 0 and data["changed_images"] == 0


def test_diff_with_bad_ids_is_a_clear_4xx(annotator, published):
    c = client_for(annotator)
    r = c.get(reverse("exports:diff") + "?old=x&new=1")
    assert r.status_code == 400 and "Give two release ids: ?old=ID&amp;new=ID." in r.content.decode()
    r = c.get(reverse("exports-api:diff") + f"?old=999999&new={published.pk}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_downloads_are_not_cached_and_carry_their_media_type(annotator, published):
    """Finding 9 (no-store on downloads) and 11 (the media type the schema documents)."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    page = client_for(annotator).get(reverse("exports:archive", args=[published.pk]))
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=annotator).key)
    for name, media in (("datasheet.json", "application/json"), ("DATASHEET.md", "text/markdown")):
        r = api.get(reverse("exports-api:file", args=[published.pk, name]))
        assert r.status_code == 200 and r["Content-Type"].startswith(media) and "no-store" in r["Cache-Control"]
    r = api.get(reverse("exports-api:archive", args=[published.pk]))
    assert r["Content-Type"] == "application/gzip"
