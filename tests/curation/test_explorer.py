"""The dataset explorer on small hand-made datasets: roles, escaping, the final-answer rule
applied before the filters, pagination, query counts, bad input, the filter hook, and the
links from the run page's counts."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, Image
from curation import services
from curation.explorer import ExtraFilter, register_filter
from curation.explorer import filters as explorer_filters
from curation.explorer.filters import parse_query
from curation.explorer.selectors import explorer_count, explorer_page
from tests.conftest import client_for

from .conftest import make_dataset

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def ds(db):
    return make_dataset(copies=4)  # 32 images, 8 texts


def url(ds, **params):
    from urllib.parse import urlencode

    return reverse("curation:explore", args=[ds.slug]) + ("?" + urlencode(params, doseq=True) if params else "")


def page_of(ds, qs: str = "", **kw):
    from django.http import QueryDict

    return explorer_page(dataset=ds, query=parse_query(QueryDict(qs)), **kw)


def count_of(ds, qs: str = "") -> int:
    from django.http import QueryDict

    return explorer_count(dataset=ds, query=parse_query(QueryDict(qs)))


def names(page) -> list[str]:
    return [r.image.file_name for r in page.rows]


# --- roles -----------------------------------------------------------------------------------
def test_annotators_and_outsiders_get_403_everywhere(ds, annotator, outsider):
    img = Image.objects.filter(dataset=ds).first()
    for user in (annotator, outsider):
        c = client_for(user)
        assert c.get(url(ds)).status_code == 403
        assert c.get(reverse("curation:explore_count", args=[ds.slug])).status_code == 403
        assert c.get(reverse("curation:explore_image", args=[ds.slug, img.pk])).status_code == 403
        assert c.get(reverse("curation:explore_index")).status_code == 403


def test_anonymous_goes_to_the_login_page(client, ds):
    r = client.get(url(ds))
    assert r.status_code == 302 and "/accounts/login/" in r.url


def test_reviewers_maintainers_and_researchers_see_the_gallery_and_an_image(ds, reviewer, maintainer, researcher):
    img = Image.objects.filter(dataset=ds).first()
    for user in (reviewer, maintainer, researcher):
        c = client_for(user)
        r = c.get(url(ds))
        assert r.status_code == 200 and img.file_name in r.content.decode()
        assert c.get(reverse("curation:explore_image", args=[ds.slug, img.pk])).status_code == 200
        assert c.get(reverse("curation:explore_count", args=[ds.slug])).json() == {"count": 32}


def test_justifications_and_one_words_are_escaped_in_the_gallery_and_on_the_image_page(ds, reviewer):
    ann = Annotation.objects.filter(image__dataset=ds).order_by("id").first()
    ann.justification = '<script>alert("x")</script> & <b>bold</b>'
    ann.one_word = "<img src=x onerror=alert(1)>"
    ann.save()
    c = client_for(reviewer)
    for r in (c.get(url(ds)), c.get(reverse("curation:explore_image", args=[ds.slug, ann.image_id]))):
        html = r.content.decode()
        assert '<script>alert("x")' not in html and "<img src=x onerror" not in html
        assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params,status",
    [
        ({"factor": "smell"}, 400),
        ({"split": "test"}, 400),
        ({"meta": "robot"}, 400),
        ({"per": "7"}, 400),
        ({"per": "many"}, 400),
        ({"after": "1", "before": "9"}, 400),
        ({"mode": "some"}, 400),
        ({"status": "lost"}, 400),
        ({"q": "x" * 201}, 400),
        ({"nf_min": "3", "nf_max": "1"}, 400),
        ({"run": "999"}, 404),
        ({"basis": "run"}, 400),  # no finished run yet
    ],
)
def test_bad_filters_get_a_clear_4xx(ds, reviewer, params, status):
    r = client_for(reviewer).get(url(ds, **params))
    assert r.status_code == status
    assert "error" in r.content.decode()


def test_unknown_dataset_is_404(reviewer, db):
    assert client_for(reviewer).get(reverse("curation:explore", args=["nope"])).status_code == 404


def test_nothing_that_changes_state_answers_here(ds, reviewer):
    c = client_for(reviewer)
    token = c.get(url(ds)).cookies["csrftoken"].value
    assert c.post(url(ds), {"csrfmiddlewaretoken": token}).status_code == 405


# --- the final answer first, then the filters ---------------------------------------------------
def test_filters_read_the_final_answer_not_an_earlier_one(ds, annotator):
    """An imported record says pose; an accepted annotator's answer (the final one) does not.
    Ranking first and filtering after keeps the image out of factor=pose."""
    img = Image.objects.filter(dataset=ds, file_name="img_0_0.JPEG").get()  # imported: darker, background
    Annotation.objects.create(
        image=img, source="user", annotator=annotator, status="accepted", justification="a pale sunlit dog", color=True
    )
    assert "img_0_0.JPEG" not in names(page_of(ds, "factor=darker&per=200"))
    assert "img_0_0.JPEG" in names(page_of(ds, "factor=color&per=200"))
    assert count_of(ds, "factor=darker") == 3  # the other three copies
    assert count_of(ds, "q=sunlit") == 1 and count_of(ds, "q=dim") == 3
    assert count_of(ds, "status=accepted") == 1 and count_of(ds, "status=imported") == 31
    assert count_of(ds, f"annotator={annotator.username}") == 1
    assert count_of(ds, "min_answers=1") == 1 and count_of(ds, "min_answers=2") == 0


def test_selected_factors_all_of_and_any_of(ds):
    # Per copy: style+pose (1), pattern+color (1), background+color+pose (1) ... see conftest.TEXTS.
    assert count_of(ds, "factor=pose&factor=background") == 4 * 2  # texts 5 and 6
    assert count_of(ds, "factor=style&factor=smaller&mode=any") == 4 * 2
    assert count_of(ds, "factor=color") == 4 * 2
    assert count_of(ds, "nf_min=3") == 4 and count_of(ds, "nf_max=1") == 4


def test_split_class_meta_label_and_published_top_factor(ds):
    assert count_of(ds, "split=val") == 16 and count_of(ds, "split=train") == 16
    assert count_of(ds, "class=2") == 8 and count_of(ds, "meta=bird") == 8
    assert count_of(ds, "meta=bird&split=val") == 4
    assert count_of(ds, "ref_top=darker") == 4 and count_of(ds, "ref_top=none") == 0
    assert count_of(ds, "ref_top=any") == 32


def test_word_search_finds_words_of_the_justification_and_the_one_word(ds):
    assert count_of(ds, "q=sketch") == 4  # justification and one-word of text 1
    assert count_of(ds, "q=cropped") == 4
    assert count_of(ds, "q=car") == 4 * 3
    assert count_of(ds, "q=car+hand") == 4  # every word
    assert count_of(ds, "q=zebra") == 0


# --- pagination and queries -------------------------------------------------------------------
def test_pages_follow_the_image_order_without_gaps_or_repeats(ds):
    seen, after = [], None
    while True:
        page = page_of(ds, "per=24" + (f"&after={after}" if after else ""))
        seen += [r.image.pk for r in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(Image.objects.filter(dataset=ds).values_list("id", flat=True))
    back = page_of(ds, f"per=24&before={after + 1}")
    assert [r.image.pk for r in back.rows] == seen[:24]


def test_the_gallery_links_the_next_and_previous_pages(ds, reviewer):
    c = client_for(reviewer)
    first = c.get(url(ds, per=24, split="val", factor="pose"))
    assert first.status_code == 200
    ids = sorted(Image.objects.filter(dataset=ds).values_list("id", flat=True))
    r = c.get(url(ds, per=24))
    assert r.status_code == 200 and r.context["next_qs"] == f"per=24&after={ids[23]}"
    second = c.get(url(ds, per=24, after=ids[23]))
    assert [row.image.pk for row in second.context["page"].rows] == ids[24:]
    assert second.context["next_qs"] is None and second.context["prev_qs"] == f"per=24&before={ids[24]}"
    back = c.get(url(ds, per=24, before=ids[24]))
    assert [row.image.pk for row in back.context["page"].rows] == ids[:24]


def test_the_query_count_does_not_grow_with_the_page_size(ds, reviewer):
    c = client_for(reviewer)
    c.get(url(ds))  # session, content types: warm
    counts = {}
    for per in (24, 48):
        with CaptureQueriesContext(connection) as ctx:
            r = c.get(url(ds, per=per))
        assert r.status_code == 200
        counts[per] = len(ctx.captured_queries)
    assert len(page_of(ds, "per=24").rows) == 24 and len(page_of(ds, "per=48").rows) == 32
    assert counts[24] == counts[48]
    with CaptureQueriesContext(connection) as ctx24:
        page_of(ds, "per=24&basis=final")
    with CaptureQueriesContext(connection) as ctx48:
        page_of(ds, "per=48&basis=final")
    assert len(ctx24.captured_queries) == len(ctx48.captured_queries)


# --- a filter another app adds -----------------------------------------------------------------
def test_a_registered_filter_narrows_the_gallery_and_refuses_its_bad_values(ds, reviewer, monkeypatch):
    from infra.errors import DomainError

    monkeypatch.setattr(explorer_filters, "_EXTRA", {})
    keep = list(Image.objects.filter(dataset=ds, split="val").values_list("id", flat=True)[:5])

    def ids(dataset_id, value):
        if value == "wrong":
            return Image.objects.filter(id__in=keep).values("id")
        if value == "list":
            return keep[:2]
        raise DomainError(f"model filter: unknown value {value!r}")

    register_filter(ExtraFilter(key="model", label="Model correctness", image_ids=ids))
    assert count_of(ds, "model=wrong") == 5 and count_of(ds, "model=list") == 2
    assert count_of(ds, "model=wrong&split=train") == 0
    r = client_for(reviewer).get(url(ds, model="bogus"))
    assert r.status_code == 400 and "unknown value" in r.content.decode()
    with pytest.raises(ValueError):
        register_filter(ExtraFilter(key="split", label="x", image_ids=ids))


# --- the run page's counts link here ------------------------------------------------------------
def _links(html: str, table_id: str) -> list[tuple[str, int]]:
    table = html[html.index(f'id="{table_id}"') :]
    table = table[: table.index("</table>")]
    return [(unescape(h), int(n)) for h, n in re.findall(r'<a href="([^"]+)">(\d+)</a>', table)]


def test_every_count_on_the_run_page_links_to_as_many_images(maintainer, ds):
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=16, enqueue=False)
    run = services.curation_run_execute(run_id=run.id)
    c = client_for(maintainer)
    html = c.get(reverse("curation:run", args=[run.id])).content.decode()
    links = _links(html, "selection") + _links(html, "factor-counts")
    assert len(links) >= 6 + 16 * 2 * 3
    for href, n in links:
        r = c.get(href)
        assert r.status_code == 200, href
        shown = int(re.search(r'id="count"><strong>(\d+)</strong>', r.content.decode()).group(1))
        assert shown == n, href
        assert r.context["page"].count == n


def test_the_run_snapshot_basis_flags_answers_changed_since_the_run(maintainer, ds, annotator):
    run = services.curation_start(dataset_slug=ds.slug, chunk_size=16, enqueue=False)
    run = services.curation_run_execute(run_id=run.id)
    img = Image.objects.get(dataset=ds, file_name="img_0_0.JPEG")
    Annotation.objects.create(image=img, source="user", annotator=annotator, status="accepted", color=True)
    snap = page_of(ds, f"basis=run&run={run.id}&factor=darker&per=200")
    assert "img_0_0.JPEG" in names(snap) and snap.count == 4
    assert [r.changed_since_run for r in snap.rows if r.image.pk == img.pk] == [True]
    assert count_of(ds, "factor=darker") == 3
    # The top factor of the run shows on the final basis too.
    top = page_of(ds, f"top={run.results.get(image=img).top_factor}&per=200")
    assert "img_0_0.JPEG" in names(top)


def test_image_page_shows_prototypes_versions_and_the_audit_trail(ds, reviewer, annotator):
    from catalog.models import AnnotationVersion
    from review.models import AuditEvent

    img = Image.objects.get(dataset=ds, file_name="img_1_2.JPEG")
    ann = Annotation.objects.create(
        image=img,
        source="user",
        annotator=annotator,
        status="accepted",
        justification="stripes everywhere",
        pattern=True,
    )
    AnnotationVersion.objects.create(annotation=ann, version=1, data=ann.snapshot(), author=annotator)
    AuditEvent.objects.create(image=img, annotation=ann, actor=reviewer, action="accept", comment="looks right")
    html = client_for(reviewer).get(reverse("curation:explore_image", args=[ds.slug, img.pk])).content.decode()
    assert "stripes everywhere" in html and "looks right" in html
    assert 'id="versions"' in html and "pattern" in html
    assert "Prototypes of class 1" in html
    assert set(FACTOR_KEYS) >= {"pattern"}
