"""The 'done when' path in a real browser: a maintainer publishes v1.0.0, downloads it and sees a diff."""

from __future__ import annotations

import hashlib

import pytest

from exports.models import Release, ReleaseStatus
from tests.exports.factories import curation_run_from_final, load_imagenet_x

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _login(page, live_server, username, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_maintainer_publishes_downloads_and_diffs_in_the_browser(
    page, live_server, maintainer, celery_worker, tmp_path
):
    dataset = load_imagenet_x(n_val=40, n_train=20)
    run1 = curation_run_from_final(dataset)
    _login(page, live_server, "boss", "pw-boss")

    def create_and_publish(version, run):
        page.goto(f"{live_server.url}/releases/new/")
        page.select_option("select[name=dataset]", "imagenet-x")
        page.fill("input[name=version]", version)
        page.select_option("select[name=curation_run]", str(run.pk))
        page.click("text=Create draft")
        page.click("button:has-text('Build')")
        page.wait_for_selector("button:has-text('Publish')", timeout=60_000)  # the page follows the build
        page.once("dialog", lambda d: d.accept())
        page.click("button:has-text('Publish')")
        page.wait_for_selector("#status:has-text('published')")
        return Release.objects.get(version=version)

    v1 = create_and_publish("1.0.0", run1)
    assert v1.status == ReleaseStatus.PUBLISHED
    with page.expect_download() as dl:
        page.click("a.button:has-text('.tar.gz')")
    saved = tmp_path / "archive.tar.gz"
    dl.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == v1.archive_sha256

    from curation.models import CuratedImage

    run2 = curation_run_from_final(dataset)
    CuratedImage.objects.filter(run=run2).order_by("image_id").first().delete()
    v2 = create_and_publish("1.1.0", run2)
    page.select_option("select[name=old]", str(v1.pk))
    page.click("text=Show diff")
    page.wait_for_selector("h1:has-text('v1.0.0 → v1.1.0')")
    removed_card = page.locator(".card", has_text="images removed")
    assert removed_card.locator("h2").inner_text() == "1"
    assert v2.status == ReleaseStatus.PUBLISHED
