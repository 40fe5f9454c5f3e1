"""The explorer's filters on the real imported ImageNet-X release (60,101 images) give the counts
computed independently, with pandas, straight from the release's jsonl files and the imagenet_x
package's own meta-label mapping."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from django.http import QueryDict

from catalog.factors import FACTOR_KEYS
from catalog.importers import default_release_path
from catalog.models import Dataset
from catalog.services import IMAGENET_X_SLUG
from curation.explorer.filters import parse_query
from curation.explorer.selectors import explorer_count, explorer_page
from curation.models import CuratedImage, CurationRun
from review.selectors import final_annotations
from tests.conftest import committed_imagenet_x_release

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
RELEASE = default_release_path()


@pytest.fixture(scope="module")
def files() -> pd.DataFrame:
    """One row per released image: its split, class, meta-label, flags, texts and published top factor."""
    from imagenet_x.utils import to_metaclass

    frames = []
    for split in ("val", "train"):
        multi = pd.read_json(RELEASE / f"imagenet_x_{split}_multi_factor.jsonl", lines=True)
        top = pd.read_json(RELEASE / f"imagenet_x_{split}_top_factor.jsonl", lines=True)
        assert list(multi["file_name"]) == list(top["file_name"])
        multi["split"] = split
        multi["top"] = top[list(FACTOR_KEYS)].idxmax(axis=1).where(top[list(FACTOR_KEYS)].sum(axis=1) > 0, "")
        frames.append(multi)
    df = pd.concat(frames, ignore_index=True)
    meta = to_metaclass(pd.Series(range(1000)), RELEASE / "imagenet_1k_classes_to_100_metaclasses.csv")
    df["meta"] = df["class"].map(dict(enumerate(meta)))
    df["n_factors"] = df[list(FACTOR_KEYS)].sum(axis=1)
    return df


@pytest.fixture(scope="module")
def dataset(django_db_setup, django_db_blocker):
    """The release imported once, plus a done curation run whose top factors are the published ones
    (so the top-factor filter can be checked against the top-factor files too)."""
    with committed_imagenet_x_release(django_db_blocker):
        with django_db_blocker.unblock():
            ds = Dataset.objects.get(slug=IMAGENET_X_SLUG)
            run = CurationRun.objects.create(dataset=ds, status="done", params={"method": "published top factors"})
            rows = [
                CuratedImage(
                    run=run,
                    image_id=a.image_id,
                    annotation_id=a.id,
                    justification=a.justification,
                    one_word=a.one_word,
                    top_factor=a.reference_top_factor,
                    top_factor_source="selector" if a.reference_top_factor else "",
                    split=a.image.split,
                    meta_label=a.image.image_class.meta_label,
                    **{k: getattr(a, k) for k in FACTOR_KEYS},
                )
                for a in final_annotations(dataset_id=ds.id).select_related("image__image_class").iterator(5000)
            ]
            CuratedImage.objects.bulk_create(rows, batch_size=5000)
            from django.db import connection

            with connection.cursor() as cur:
                cur.execute("ANALYZE")
            yield ds


def n(ds, qs: str) -> int:
    return explorer_count(dataset=ds, query=parse_query(QueryDict(qs)))


@pytest.mark.parametrize("basis", ["final", "run"])
def test_split_and_factor_filters_equal_the_multi_factor_files(dataset, files, db, basis):
    b = f"basis={basis}&"
    assert n(dataset, b) == len(files) == 60101
    for split in ("val", "train"):
        part = files[files["split"] == split]
        assert n(dataset, f"{b}split={split}") == len(part)
        for k in ("pose", "style", "person_blocking", "subcategory"):
            assert n(dataset, f"{b}split={split}&factor={k}") == int(part[k].sum()), (split, k)


@pytest.mark.parametrize("basis", ["final", "run"])
def test_all_of_and_any_of_equal_the_files(dataset, files, db, basis):
    both = (files["background"] == 1) & (files["darker"] == 1)
    either = (files["style"] == 1) | (files["texture"] == 1) | (files["pattern"] == 1)
    assert n(dataset, f"basis={basis}&factor=background&factor=darker") == int(both.sum())
    assert n(dataset, f"basis={basis}&factor=style&factor=texture&factor=pattern&mode=any") == int(either.sum())


@pytest.mark.parametrize("basis", ["final", "run"])
def test_meta_label_class_and_factor_count_filters_equal_the_files(dataset, files, db, basis):
    b = f"basis={basis}&"
    for meta in ("dog", "bird", "vessel", "other"):
        assert n(dataset, f"{b}meta={meta}") == int((files["meta"] == meta).sum()), meta
    assert n(dataset, f"{b}meta=dog&factor=pose&split=val") == int(
        ((files["meta"] == "dog") & (files["pose"] == 1) & (files["split"] == "val")).sum()
    )
    for cls in (0, 281, 999):
        assert n(dataset, f"{b}class={cls}") == int((files["class"] == cls).sum())
    assert n(dataset, f"{b}nf_min=3") == int((files["n_factors"] >= 3).sum())
    assert n(dataset, f"{b}nf_min=1&nf_max=1") == int((files["n_factors"] == 1).sum())


@pytest.mark.parametrize("basis", ["final", "run"])
def test_top_factor_filters_equal_the_top_factor_files(dataset, files, db, basis):
    for k in ("pose", "background", "texture", "style"):
        expected = int((files["top"] == k).sum())
        assert n(dataset, f"basis={basis}&ref_top={k}") == expected, k
        assert n(dataset, f"basis={basis}&top={k}") == expected, k  # the run holds the published ones
    assert n(dataset, f"basis={basis}&top={'background'}&split=train") == int(
        ((files["top"] == "background") & (files["split"] == "train")).sum()
    )


def test_word_search_finds_every_text_with_the_word(dataset, files, db):
    text = (files["justification"].fillna("") + " " + files["one_word"].fillna("")).str.lower()
    for word in ("grass", "snow", "dark"):
        exact = text.str.contains(rf"\b{word}\b", regex=True)
        got = n(dataset, f"q={word}")
        # English stemming also finds "grassy", "darker"...; never fewer than the whole word.
        stem = text.str.contains(rf"\b{word[:4]}", regex=True)
        assert int(exact.sum()) <= got <= int(stem.sum()), word
        page = explorer_page(dataset=dataset, query=parse_query(QueryDict(f"q={word}&per=200")))
        assert all(re.search(rf"\b{word[:4]}", (r.justification + " " + r.one_word).lower()) for r in page.rows)


def test_pages_walk_a_filter_in_file_order_without_repeats(dataset, files, db):
    seen, after = [], None
    while True:
        page = explorer_page(
            dataset=dataset,
            query=parse_query(QueryDict("class=281&per=24" + (f"&after={after}" if after else ""))),
        )
        seen += [r.image.file_name for r in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    # Image ids follow the release files' line order (the importer keeps it): val first, then train.
    assert seen == list(files.loc[files["class"] == 281, "file_name"])
