"""A maintainer starts a curation from the browser, watches its progress and sees the figures."""

from __future__ import annotations

import pytest

from curation.models import CurationRun
from tests.conftest import SCREENSHOTS, _make_user

from .conftest import make_dataset


@pytest.mark.browser
@pytest.mark.slow
def test_maintainer_starts_a_run_watches_it_and_sees_the_figures(
    browser, live_server, celery_worker, django_user_model
):
    make_dataset(slug="browser", copies=2)
    _make_user(django_user_model, "boss", "maintainer")
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
    run = CurationRun.objects.get()
    assert run.status == "done" and run.processed == 16
