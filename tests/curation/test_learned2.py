"""learned-2 in the platform: trained on train only, stored safely, used by runs, honest figures on the run page."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from catalog.factors import FACTOR_KEYS
from catalog.models import Image
from curation import selector_training, services, topfactor2
from curation.models import CuratedImage, SelectorModel
from infra.errors import DomainError
from tests.conftest import client_for

from .conftest import TEXTS, make_dataset

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

N_TRAIN = sum(1 for t in TEXTS if t[3] == "train")
VAL_MULTI = sum(1 for t in TEXTS if t[3] == "val" and len(t[2]) >= 2)
TRAIN_MULTI = sum(1 for t in TEXTS if t[3] == "train" and len(t[2]) >= 2)


@pytest.fixture
def spy_training(monkeypatch):
    """Records the rows that reach TextSelector.train (the real training still runs)."""
    seen: list[topfactor2.LabelledRows] = []
    real = topfactor2.TextSelector.train.__func__

    def spy(cls, rows, **kw):
        seen.append(rows)
        return real(cls, rows, **kw)

    monkeypatch.setattr(topfactor2.TextSelector, "train", classmethod(spy))
    return seen


def learned2_run(ds, **kw):
    run = services.curation_start(dataset_slug=ds.slug, selector="learned", chunk_size=3, enqueue=False, **kw)
    return services.curation_run_execute(run_id=run.id)


def test_training_reads_only_train_images(spy_training):
    ds = make_dataset(copies=2)
    m = selector_training.selector_model_train_learned2(dataset_slug=ds.slug)
    (rows,) = spy_training
    splits = dict(Image.objects.filter(dataset=ds).values_list("id", "split"))
    assert len(rows) == 2 * N_TRAIN
    assert {splits[i] for i in rows.image_ids} == {"train"} and set(rows.splits) == {"train"}
    assert m.name == "learned-2" and m.params["split"] == "train"
    assert m.params["trained_on"]["images"] == 2 * N_TRAIN and m.params["trained_on"]["splits"] == ["train"]
    assert selector_training.trained_image_ids(m) == set(rows.image_ids)
    run = learned2_run(ds)
    assert "image_ids_file" not in run.stats["agreement_with_reference"]["trained_on"]  # no server path in stats


def test_a_val_row_from_another_source_is_refused_and_nothing_is_stored(spy_training):
    ds = make_dataset()
    val_img = Image.objects.filter(dataset=ds, split="val").first()
    leak = topfactor2.LabelledRows(
        justifications=["dark"],
        one_words=["dark"],
        mask=np.array([[k in ("darker", "pose") for k in FACTOR_KEYS]]),
        label=np.array([FACTOR_KEYS.index("darker")]),
        splits=["val"],
        sources=["annotator_main_factor"],
        image_ids=[val_img.id],
    )
    with pytest.raises(DomainError, match=r"split\(s\) \['val'\]"):
        selector_training.selector_model_train_learned2(dataset_slug=ds.slug, extra_rows=[leak])
    assert SelectorModel.objects.count() == 0
    assert spy_training and all("val" not in r.splits for r in spy_training[1:])  # refused at the door


def test_unknown_training_source_is_refused():
    ds = make_dataset()
    with pytest.raises(DomainError, match="unknown training source"):
        selector_model = selector_training.selector_model_train_learned2(dataset_slug=ds.slug, sources=["oracle"])
        assert selector_model is None
    assert SelectorModel.objects.count() == 0


def test_stored_model_round_trips_and_a_tampered_file_is_refused(settings):
    ds = make_dataset()
    m = selector_training.selector_model_train_learned2(dataset_slug=ds.slug)
    assert m.path.endswith(".npz")
    model = selector_training.load_learned2(m.path, m.sha256)
    assert model.train_info["n_train"] == N_TRAIN
    path = settings.MEDIA_ROOT / m.path
    path.write_bytes(path.read_bytes() + b"x")
    selector_training.load_learned2.cache_clear()
    with pytest.raises(ValueError, match="sha256"):
        selector_training.load_learned2(m.path, m.sha256)


def test_learned_runs_default_to_learned2_and_choose_among_selected_factors():
    ds = make_dataset()
    with pytest.raises(DomainError, match="No learned-2 selector is trained yet"):
        services.curation_start(dataset_slug=ds.slug, selector="learned", enqueue=False)
    m = selector_training.selector_model_train_learned2(dataset_slug=ds.slug)
    run = learned2_run(ds)
    assert run.status == "done" and run.selector_model_id == m.id
    assert run.params["selector_version"] == "learned-2" and run.params["selector_model"]["sha256"] == m.sha256
    results = list(CuratedImage.objects.filter(run=run))
    assert len(results) == len(TEXTS)
    for r in results:
        selected = [k for k in FACTOR_KEYS if getattr(r, k)]
        assert (r.top_factor in selected) if selected else r.top_factor == ""


def test_learned1_stays_selectable_beside_learned2():
    ds = make_dataset()
    services.selector_model_train(dataset_slug=ds.slug)
    selector_training.selector_model_train_learned2(dataset_slug=ds.slug)
    run = learned2_run(ds, learned_version="learned-1")
    assert run.status == "done" and run.params["selector_version"] == "learned-1"
    assert run.selector_model.name == "learned"
    a = run.stats["agreement_with_reference"]  # learned-1 too is scored on held-out images only
    assert (a["images_multi_factor"], a["images_left_out"]) == (VAL_MULTI, TRAIN_MULTI)
    assert a["trained_on"] == {"dataset": ds.slug, "splits": ["train"], "images": N_TRAIN}
    with pytest.raises(DomainError, match="learned_version must be one of"):
        services.curation_start(dataset_slug=ds.slug, selector="learned", learned_version="learned-9", enqueue=False)


def test_run_page_reports_agreement_on_held_out_images_only(maintainer):
    ds = make_dataset()
    selector_training.selector_model_train_learned2(dataset_slug=ds.slug)
    run = learned2_run(ds)
    a = run.stats["agreement_with_reference"]
    # Computed independently from the stored rows: val images with 2+ factors.
    val = [
        r
        for r in CuratedImage.objects.filter(run=run, split="val").select_related("annotation")
        if sum(getattr(r, k) for k in FACTOR_KEYS) >= 2
    ]
    agree = sum(r.top_factor == r.annotation.reference_top_factor for r in val)
    assert (a["images_multi_factor"], a["agree"]) == (VAL_MULTI, agree) == (len(val), agree)
    assert a["images_left_out"] == TRAIN_MULTI and a["trained_on"]["splits"] == ["train"]
    per = a["per_factor"]
    assert sum(f["reference"] for f in per.values()) == VAL_MULTI
    assert sum(f["agree"] for f in per.values()) == agree
    page = client_for(maintainer).get(reverse("curation:run", args=[run.id])).content.decode()
    assert "Agreement with the published top factors (held-out images)" in page
    assert f"{agree} / {VAL_MULTI} held-out images" in page
    assert f"trained on {N_TRAIN} images of {ds.slug} (train" in page.replace("Selector trained", "trained")
    assert 'id="agreement-per-factor"' in page


def test_paper_runs_count_every_image_as_held_out(maintainer):
    ds = make_dataset()
    run = services.curation_run_execute(
        run_id=services.curation_start(dataset_slug=ds.slug, chunk_size=4, enqueue=False).id
    )
    a = run.stats["agreement_with_reference"]
    assert a["images_multi_factor"] == VAL_MULTI + TRAIN_MULTI and a["images_left_out"] == 0
    assert a["trained_on"] is None
    page = client_for(maintainer).get(reverse("curation:run", args=[run.id])).content.decode()
    assert "the paper rule learns from no image" in page


def test_curation_agreement_reports_learned2_with_per_factor_figures_and_cv():
    ds = make_dataset(copies=3)
    out = io.StringIO()
    call_command("curation_agreement", "--dataset", ds.slug, "--no-confusion", "--folds", "3", stdout=out)
    body = json.loads(out.getvalue())
    v2 = next(s for s in body["selectors"] if s.get("version") == "learned-2")
    assert v2["images_multi_factor"] == 3 * VAL_MULTI and v2["trained_on"] == "train"
    assert v2["default_learned_version"] is True
    assert sum(f["reference"] for f in v2["per_factor"].values()) == 3 * VAL_MULTI
    assert v2["share_ci95"][0] <= v2["share"] <= v2["share_ci95"][1]
    cv = body["cv_on_train"]
    assert cv["folds"] == 3 and cv["images"] == 3 * N_TRAIN
    assert 0 <= cv["learned-2"]["share"] <= 1 and "learned-1" in cv
    assert set(SelectorModel.objects.values_list("name", flat=True)) == {"learned", "learned-2"}
