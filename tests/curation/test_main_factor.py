"""Curation takes the annotator's main factor as the top factor where the final answer names one,
and records where every top factor comes from; the release datasheet counts the sources."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Image
from curation import services
from curation.models import CuratedImage
from tests.conftest import client_for

from .conftest import make_dataset

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def curated(db, annotator):
    """Tiny dataset; two images get an accepted annotator answer (their final one) with a main factor."""
    ds = make_dataset()
    named = {}
    for name, factors, main in (
        ("img_0_5.JPEG", ["background", "color", "pose"], "color"),
        ("img_0_2.JPEG", ["pattern", "color"], "pattern"),
    ):
        img = Image.objects.get(dataset=ds, file_name=name)
        Annotation.objects.create(
            image=img,
            source="user",
            annotator=annotator,
            status="accepted",
            justification="the colour is the big change" if main == "color" else "stripes",
            one_word=main,
            main_factor=main,
            **{k: k in factors for k in FACTOR_KEYS},
        )
        named[img.pk] = main
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=3, enqueue=False)
    return services.curation_run_execute(run_id=run.id), named


def test_the_main_factor_is_the_top_factor_and_its_source_is_recorded(curated):
    run, named = curated
    rows = {c.image_id: c for c in CuratedImage.objects.filter(run=run)}
    for image_id, main in named.items():
        assert (rows[image_id].top_factor, rows[image_id].top_factor_source) == (main, "annotator")
    others = [c for i, c in rows.items() if i not in named]
    n_ticked = {c.image_id: sum(getattr(c, k) for k in FACTOR_KEYS) for c in others}
    assert {c.top_factor_source for c in others if n_ticked[c.image_id] == 1} == {"single"}
    assert {c.top_factor_source for c in others if n_ticked[c.image_id] >= 2} == {"selector"}
    assert all(c.top_factor in [k for k in FACTOR_KEYS if getattr(c, k)] for c in rows.values())
    assert run.stats["top_factor_sources"] == {"annotator": 2, "selector": 5, "single": 1}


def test_the_run_page_links_each_source_to_its_images(curated, maintainer):
    run, named = curated
    c = client_for(maintainer)
    html = c.get(reverse("curation:run", args=[run.id])).content.decode()
    assert "top_source=annotator" in html
    r = c.get(
        reverse("curation:explore", args=[run.dataset.slug]), {"run": run.id, "basis": "run", "top_source": "annotator"}
    )
    assert r.context["page"].count == 2 and {row.image.pk for row in r.context["page"].rows} == set(named)


def test_the_release_datasheet_records_the_source_of_each_top_factor(
    curated, maintainer, django_capture_on_commit_callbacks
):
    from exports import services as exports

    run, _ = curated
    release = exports.release_create(dataset=run.dataset, version="1.0.0", curation_run=run, created_by=maintainer)
    with django_capture_on_commit_callbacks(execute=False):
        started = exports.release_build_start(release_id=release.pk, user=maintainer)
    exports.release_build(release_id=started.pk, token=started.build_token)
    release.refresh_from_db()
    sheet = json.loads((exports.release_dir(release) / "datasheet.json").read_text())
    sources = sheet["preprocessing_cleaning_labeling"]["Sources of the top factors"]
    assert sources == {"train": {"annotator": 2, "selector": 2}, "val": {"selector": 3, "single": 1}}
    # The top-factor files keep the ImageNet-X format: no extra column.
    line = json.loads((exports.release_dir(release) / "imagenet_x_val_top_factor.jsonl").read_text().splitlines()[0])
    assert set(line) == {"file_name", "class", *FACTOR_KEYS, "justification", "one_word"}
    # The release page shows the datasheet's counts, each linking to its images.
    html = client_for(maintainer).get(reverse("exports:detail", args=[release.pk])).content.decode()
    assert 'id="datasheet-top-sources"' in html and "top_source=annotator" in html
    # Every count of the datasheet's tables links to as many images.
    import re
    from html import unescape

    c = client_for(maintainer)
    links = re.findall(r'<a href="(/curation/explore/[^"]+)">(\d+)</a>', html)
    assert len(links) >= 2 + 16 * 2 * 2 + 3
    for href, n in links:
        assert c.get(unescape(href)).context["page"].count == int(n), href
