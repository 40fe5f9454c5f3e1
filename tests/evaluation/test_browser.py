"""In the browser: upload a CSV, see the figures, drill down from a factor to its images."""

from __future__ import annotations

import pytest
from django.conf import settings

from catalog.models import Dataset
from tests.conftest import SCREENSHOTS
from tests.evaluation.helpers import reference_csv

pytestmark = [pytest.mark.browser, pytest.mark.embedded]


@pytest.fixture
def worker_if_broker(request):
    if settings.CELERY_BROKER_URL:  # PostgreSQL + Redis: a real worker runs the task
        request.getfixturevalue("celery_worker")


def test_upload_see_figures_and_drill_down(
    browser, live_server, transactional_db, worker_if_broker, django_user_model, tmp_path
):
    from tests.conftest import _make_user

    Dataset.objects.create(slug="imagenet-x", name="ImageNet-X")
    _make_user(django_user_model, "res", "researcher")
    csv_path = tmp_path / "ResNet50.csv"
    csv_path.write_bytes(reference_csv("ResNet50"))
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", "res")
    page.fill("input[name=password]", "pw-res")
    page.click("button[type=submit], input[type=submit]")
    page.goto(live_server.url + "/")  # a researcher lands on the evaluation page
    assert "/evaluation/" in page.url
    page.fill("input[name=name]", "my ResNet-50")
    page.set_input_files("input[name=predictions]", str(csv_path))
    page.select_option("select[name=labels]", "toolkit")
    page.check("input[name=toolkit_compatible]")
    page.click("#upload button[type=submit]")
    for _ in range(60):  # the task runs eagerly (embedded) or on the worker
        if page.locator("#factors").count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    assert "2.39" in page.locator("#factors").inner_text()
    imgs = page.locator(".figures img")
    assert imgs.count() >= 3
    assert all(page.evaluate("(i) => i.naturalWidth", imgs.nth(i).element_handle()) > 100 for i in range(imgs.count()))
    page.screenshot(path=str(SCREENSHOTS / "evaluation_detail.png"), full_page=True)
    page.click("#factors a:text('texture')")
    assert "282 images, 171 misclassified" in page.locator("#summary").inner_text()
    assert page.locator("#images tbody tr.wrong").count() == 48
    page.screenshot(path=str(SCREENSHOTS / "evaluation_images.png"), full_page=True)
    page.click("#next")
    assert "Page 2 of 6" in page.locator("#summary").inner_text()
