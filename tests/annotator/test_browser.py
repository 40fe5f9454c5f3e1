"""Headless Chromium drives the form with the keyboard only: qualification, then three images."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from PIL import Image as PILImage
from PIL import ImageDraw

from annotator.models import Assignment, AssignmentKind, GoldKind, Qualification, QualificationStatus
from annotator.services import campaign_create, gold_items_add
from catalog.factors import FACTORS_BY_KEY
from catalog.models import Annotation, Image
from infra.roles import Role
from tests.annotator.conftest import make_dataset
from tests.conftest import SCREENSHOTS


def _paint(ds) -> None:
    """Give the tiny images something to look at (a shape on a coloured background)."""
    for i, img in enumerate(Image.objects.filter(dataset=ds)):
        pic = PILImage.new("RGB", (480, 360), ((40 * i) % 255, 120, 200 - (15 * i) % 150))
        d = ImageDraw.Draw(pic)
        d.ellipse((120 + 10 * (i % 5), 80, 340, 300), fill=(230, 180 - 10 * (i % 7), 40))
        pic.save(img.path)


def _answer_with_keys(page, keys: list[str], justification: str, one_word: str) -> None:
    for k in keys:
        page.keyboard.press(k)
    page.keyboard.press("j")
    page.keyboard.type(justification)
    page.keyboard.press("Tab")
    page.keyboard.type(one_word)
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")


@pytest.mark.browser
@pytest.mark.slow
def test_annotator_qualifies_and_annotates_three_images_with_the_keyboard(
    browser, live_server, tmp_path, django_user_model
):
    ds = make_dataset(tmp_path, n_images=8, n_gold=3, n_classes=2, slug="browser")
    _paint(ds)
    campaign = campaign_create(name="browser", dataset=ds, overlap_fraction=0.25, overlap_copies=3, gold_rate=0.0)
    gold_items_add(
        campaign=campaign,
        images=Image.objects.filter(dataset=ds, known_factors__isnull=False),
        kind=GoldKind.QUALIFICATION,
    )
    user = django_user_model.objects.create_user(username="kbd", password="pw-kbd-123")
    user.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR)[0])

    planned = [(["1", "8"], ["pose", "brighter"]), (["0"], ["background"]), (["n"], [])]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next=/annotate/c/{campaign.id}/next")
    page.fill("#id_username", "kbd")
    page.fill("#id_password", "pw-kbd-123")
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    # GET /next only offers the button (a GET never leases); the lease is taken by its POST.
    assert not Assignment.objects.filter(annotator=user).exists()
    with page.expect_navigation():
        page.click("#next-image")
    # Qualification: answer each known-factor variant right, read the feedback, go on.
    for _ in range(3):
        assert page.locator("#answer-form").count() == 1, page.content()[:2000]
        a = Assignment.objects.filter(annotator=user, status="leased").get()
        assert a.kind == AssignmentKind.QUALIFICATION
        keys = [FACTORS_BY_KEY[k].shortcut for k in a.gold_item.factors]
        _answer_with_keys(page, keys, "looks different", "known")
        assert "expected answer" in page.content()
        with page.expect_navigation():
            page.keyboard.press("Enter")
    assert Qualification.objects.get(annotator=user).status == QualificationStatus.PASSED
    done: dict[int, list[str]] = {}
    for n, (keys, factors) in enumerate(planned):
        a = Assignment.objects.filter(annotator=user, status="leased").get()
        assert a.kind == AssignmentKind.WORK
        page.wait_for_function("document.querySelector('#sample').complete")
        if n == 0:
            for k in keys:
                page.keyboard.press(k)
            page.keyboard.press("j")
            page.keyboard.type("<b>turned</b> & brighter")
            page.keyboard.press("Tab")
            page.keyboard.type("pose")
            page.screenshot(path=str(SCREENSHOTS / "annotation_form.png"), full_page=True)
            assert page.locator("#id_pose").is_checked() and page.locator("#id_brighter").is_checked()
            with page.expect_navigation():
                page.keyboard.press("Control+Enter")
        else:
            _answer_with_keys(page, keys, f"image {n}", f"w{n}")
        done[a.image_id] = factors

    mine = {a.image_id: a for a in Annotation.objects.filter(annotator=user)}
    assert set(mine) == set(done)
    for image_id, factors in done.items():
        assert mine[image_id].selected_factors == factors
    assert mine[next(iter(done))].justification == "<b>turned</b> & brighter"
    assert [a.nothing_differs for a in mine.values()] == [False, False, True]
    assert all(a.time_on_task_ms and a.time_on_task_ms > 0 for a in mine.values())
