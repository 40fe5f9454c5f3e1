"""Headless Chromium, mouse only: tick two factors, pick the main one with its radio, submit."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from annotator.services import campaign_create
from catalog.models import Annotation
from infra.roles import Role
from tests.annotator.conftest import make_dataset
from tests.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_main_factor_is_picked_with_the_mouse_and_needs_a_ticked_factor(
    browser, live_server, tmp_path, django_user_model
):
    ds = make_dataset(tmp_path, n_images=3, n_gold=0, slug="mouse")
    campaign = campaign_create(name="mouse", dataset=ds, overlap_fraction=0.0, gold_rate=0.0)
    user = django_user_model.objects.create_user(username="mouse", password="pw-mouse-123")
    user.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR)[0])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next=/annotate/c/{campaign.id}/next")
    page.fill("#id_username", "mouse")
    page.fill("#id_password", "pw-mouse-123")
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    # GET /next only offers the button (a GET never leases); the lease is taken by its POST.
    with page.expect_navigation():
        page.click("#next-image")
    main_pose = page.locator("input[name=main_factor][value=pose]")
    assert main_pose.is_disabled()  # not ticked: cannot be the main factor
    page.click("label[for=id_pose]")
    assert main_pose.is_checked()  # one ticked factor is the main one
    page.click("label[for=id_darker]")
    page.click("input[name=main_factor][value=darker]")
    assert page.locator("input[name=main_factor][value=darker]").is_checked() and not main_pose.is_checked()
    page.fill("#id_justification", "turned, and much darker")
    page.fill("#id_one_word", "dark")
    page.screenshot(path=str(SCREENSHOTS / "main_factor_mouse.png"), full_page=True)
    # Unticking the main factor clears it; submitting then is refused with the reason.
    page.click("label[for=id_darker]")
    page.click("label[for=id_color]")
    assert not page.locator("input[name=main_factor]:checked").count()
    with page.expect_navigation():
        page.click("#submit-next")
    assert "main one" in page.inner_text("#main-factor-error") and Annotation.objects.count() == 0
    page.click("input[name=main_factor][value=color]")
    page.fill("#id_justification", "the colour changed")
    page.fill("#id_one_word", "colour")
    with page.expect_navigation():
        page.click("#submit-next")
    ann = Annotation.objects.get()
    assert ann.selected_factors == ["pose", "color"] and ann.main_factor == "color"
