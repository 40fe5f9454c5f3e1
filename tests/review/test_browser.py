"""Headless Chromium: a reviewer audits (rejects with a comment) and adjudicates from the browser."""

from __future__ import annotations

import pytest

from catalog.models import Annotation
from review.models import AuditSettings, ReviewDecision
from tests.conftest import SCREENSHOTS
from tests.review.conftest import answer, make_images


@pytest.mark.browser
@pytest.mark.slow
def test_reviewer_audits_one_annotation_and_adjudicates_one_image(
    browser, live_server, tmp_path, annotator, other_annotator, django_user_model
):
    from django.contrib.auth.models import Group
    from playwright.sync_api import expect

    images = make_images(tmp_path / "browser", 4)
    AuditSettings.objects.update_or_create(pk=1, defaults={"base_rate": 1.0, "new_annotator_rate": 1.0})
    single = answer(images[0], annotator, ["pose"], justification="Turned <i>around</i>, much darker too")
    answer(images[1], annotator, ["pose", "darker"], justification="turned and dark")
    answer(images[1], other_annotator, ["pose"], justification="turned")
    reviewer = django_user_model.objects.create_user(username="rv-browser", password="pw-rv-browser-1")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/accounts/login/?next=/review/")
    page.fill("input[name=username]", "rv-browser")
    page.fill("input[name=password]", "pw-rv-browser-1")
    page.click("#login-submit")
    expect(page.locator("h1")).to_have_text("Audit queue")
    page.screenshot(path=str(SCREENSHOTS / "review_queue.png"), full_page=True)

    # Audit: open the sampled annotation, reject it with a comment.
    page.click(f"a[href='/review/annotations/{single.pk}/']")
    expect(page.locator("#answers")).to_contain_text("Turned <i>around</i>, much darker too")  # shown escaped
    page.screenshot(path=str(SCREENSHOTS / "review_audit.png"), full_page=True)
    page.fill("#reject-form textarea[name=comment]", "Tick <darker> too: the text says darker.")
    page.click("#reject")
    expect(page.locator("#status")).to_have_text("rejected")
    expect(page.locator("body")).to_contain_text("Tick <darker> too: the text says darker.")

    # Adjudicate: the majority proposal is pre-ticked, the tie on `darker` is the reviewer's call.
    page.goto(f"{live_server.url}/review/")
    page.click(f"a[href='/review/images/{images[1].pk}/adjudicate/']")
    expect(page.locator("#adjudicate-form")).to_contain_text("Undecided")
    assert page.is_checked("#adjudicate-form input[value=pose]")
    page.check("#adjudicate-form input[value=darker]")
    page.fill("#adjudicate-form textarea[name=justification]", "Turned, and the light is darker.")
    page.screenshot(path=str(SCREENSHOTS / "review_adjudicate.png"), full_page=True)
    page.click("#settle")
    expect(page.locator("#settled")).to_contain_text("Settled")
    page.screenshot(path=str(SCREENSHOTS / "review_adjudicated.png"), full_page=True)
    page.goto(f"{live_server.url}/review/images/{images[1].pk}/timeline/")
    expect(page.locator("#timeline")).to_contain_text("adjudicated")
    page.screenshot(path=str(SCREENSHOTS / "review_timeline.png"), full_page=True)

    single.refresh_from_db()
    assert single.status == "rejected"
    assert ReviewDecision.objects.get(annotation=single).comment == "Tick <darker> too: the text says darker."
    consensus = Annotation.objects.get(image=images[1], source="consensus")
    assert consensus.selected_factors == ["pose", "darker"]
