"""Headless Chromium: a reviewer filters the gallery, reads the count, opens an image; a maintainer
clicks a count on the curation run page and lands on the images behind it. Screenshots go to
var/screenshots/."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from PIL import Image as PILImage
from PIL import ImageDraw

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Dataset, Image, ImageClass
from curation import services
from infra.roles import Role
from tests.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXTS = [
    (["pose", "background"], "the dog is lying on its back on the grass", "lying"),
    (["darker"], "a dim photo taken at night", "dark"),
    (["color", "pattern"], "the cat has <b>striped</b> orange fur", "stripes"),
    (["smaller", "background", "multiple_objects"], "a tiny cat far away in a garden with chairs", "tiny"),
    (["style"], "a pencil sketch of the animal", "sketch"),
    (["partial_view"], "only the head is visible, cropped", "cropped"),
]


def _dataset(tmp_path) -> Dataset:
    root = tmp_path / "ds"
    root.mkdir()
    ds = Dataset.objects.create(slug="pics", name="Pictures", root=str(root))
    classes = [
        ImageClass.objects.create(dataset=ds, index=0, name="tabby cat", meta_label="other"),
        ImageClass.objects.create(dataset=ds, index=1, name="beagle", meta_label="dog"),
    ]
    for i in range(18):
        name = f"photo_{i:03d}.jpg"
        pic = PILImage.new("RGB", (320, 240), ((50 * i) % 255, 130, 200 - (9 * i) % 150))
        ImageDraw.Draw(pic).ellipse((60 + 5 * i, 40, 260, 200), fill=(240, 170 - 6 * i, 40))
        pic.save(root / name)
        factors, text, one = TEXTS[i % len(TEXTS)]
        img = Image.objects.create(
            dataset=ds,
            split="val" if i % 3 else "train",
            image_class=classes[i % 2],
            file_name=name,
            relpath=name,
            readable=True,
            width=320,
            height=240,
        )
        Annotation.objects.create(
            image=img,
            source="imported",
            status="accepted",
            source_release="demo",
            justification=text,
            one_word=one,
            reference_top_factor=factors[0],
            **{k: k in factors for k in FACTOR_KEYS},
        )
    return ds


def _login(browser, live_server, username: str, role: str, django_user_model):
    user = django_user_model.objects.create_user(username=username, password=f"pw-{username}-1")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{live_server.url}/accounts/login/?next=/curation/explore/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}-1")
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    return page


def test_a_reviewer_filters_the_gallery_and_opens_an_image(browser, live_server, tmp_path, django_user_model):
    ds = _dataset(tmp_path)
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=50, enqueue=False)
    services.curation_run_execute(run_id=run.id)
    page = _login(browser, live_server, "rev", Role.REVIEWER, django_user_model)
    assert page.url.endswith("/curation/explore/pics/")
    # (The CSP forbids evaluating strings, so the waits are selectors, not JS predicates.)
    page.wait_for_selector("#count strong:text-is('18')")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SCREENSHOTS / "explorer_gallery.png"), full_page=True)
    # The justification's markup is text, not HTML.
    assert page.locator("#gallery b").count() == 0 and "<b>striped</b>" in page.inner_text("#gallery")
    page.check("input[name=factor][value=background]")
    page.select_option("select[name=split]", "train")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    page.wait_for_selector("#count strong:not(:text-is('…'))")
    expected = Annotation.objects.filter(image__dataset=ds, background=True, image__split="train").count()
    assert expected > 0
    assert page.inner_text("#count strong") == str(expected)
    assert page.locator("#gallery li").count() == expected
    page.screenshot(path=str(SCREENSHOTS / "explorer_filtered.png"), full_page=True)
    with page.expect_navigation():
        page.click("#gallery li a.ex-name >> nth=0")
    assert "Prototypes of" in page.content() and page.locator("#justification").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "explorer_image.png"), full_page=True)


def test_a_maintainer_clicks_a_count_on_the_run_page_and_lands_on_its_images(
    browser, live_server, tmp_path, django_user_model
):
    ds = _dataset(tmp_path)
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=50, enqueue=False)
    run = services.curation_run_execute(run_id=run.id)
    page = _login(browser, live_server, "boss", Role.MAINTAINER, django_user_model)
    page.goto(f"{live_server.url}/curation/runs/{run.id}/")
    cell = page.locator("#factor-counts a[href*='factor=background'][href*='split=train']").first
    n = int(cell.inner_text())
    with page.expect_navigation():
        cell.click()
    assert re.search(r"basis=run", page.url)
    assert page.inner_text("#count strong") == str(n) and page.locator("#gallery li").count() == n
    page.screenshot(path=str(SCREENSHOTS / "explorer_from_run_page.png"), full_page=True)
