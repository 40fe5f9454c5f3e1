"""A maintainer starts a curation from the browser, watches its progress and sees the figures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation.models import CurationRun
from tests.conftest import _make_user

from .conftest import make_dataset

# live_server runs Django in a thread while Playwright's sync API holds an event loop in this one.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
@pytest.mark.slow
def test_maintainer_starts_a_run_watches_it_and_sees_the_figures(live_server, celery_worker, django_user_model):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    make_dataset(slug="browser", copies=2)
    _make_user(django_user_model, "boss", "maintainer")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/curation/")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", "pw-boss")
        page.click("button[type=submit]")
        page.wait_for_url("**/curation/")
        page.select_option("select[name=dataset]", "browser")
        page.fill("input[name=chunk_size]", "4")
        page.click("#start-form button[type=submit]")
        page.wait_for_url("**/curation/runs/*/")
        # The poller reloads the page once the run is done; the figures then appear.
        page.wait_for_selector(".figs img", timeout=60_000)
        assert page.inner_text("#st") == "done"
        assert page.locator(".figs img").count() == 3
        for i in range(3):
            assert page.locator(".figs img").nth(i).evaluate("img => img.naturalWidth") > 100
        page.screenshot(path=str(SCREENSHOTS / "curation_run.png"), full_page=True)
        browser.close()
    run = CurationRun.objects.get()
    assert run.status == "done" and run.processed == 16
