"""`curate` and `curation_agreement` commands, and the agreement measure itself."""

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from catalog.factors import FACTOR_KEYS
from curation.agreement import agreement
from curation.models import CurationRun, SelectorModel

from .conftest import TEXTS, tiny_dataset  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def i(key: str) -> int:
    return FACTOR_KEYS.index(key)


def test_agreement_counts_only_images_with_two_or_more_factors():
    mask = np.zeros((4, 16), dtype=bool)
    mask[0, [i("pose"), i("background")]] = True  # agrees
    mask[1, [i("pose"), i("color")]] = True  # disagrees
    mask[2, [i("pose")]] = True  # single factor: left out
    mask[3, [i("darker"), i("pose")]] = True  # agrees
    ref = np.array([i("pose"), i("color"), i("pose"), i("darker")])
    pred = np.array([i("pose"), i("pose"), i("pose"), i("darker")])
    out = agreement(pred, ref, mask)
    assert (out["images_multi_factor"], out["agree"]) == (3, 2)
    assert out["share"] == pytest.approx(2 / 3)
    assert out["confusion"] == {"pose": {"pose": 1}, "darker": {"darker": 1}, "color": {"pose": 1}}


def test_curate_inline_prints_the_finished_run(tiny_dataset):  # noqa: F811
    out = io.StringIO()
    call_command("curate", tiny_dataset.slug, "--inline", "--chunk-size", "3", stdout=out)
    body = json.loads(out.getvalue())
    assert body["status"] == "done" and body["processed"] == len(TEXTS)
    assert body["selection"]["single_factor"] == 1


def test_curate_on_an_unknown_dataset_fails_clearly(db):
    with pytest.raises(CommandError, match="No dataset with slug 'nope'"):
        call_command("curate", "nope", "--inline")
    assert CurationRun.objects.count() == 0


def test_agreement_trains_the_learned_selector_on_train_only_and_reports_every_selector(tiny_dataset):  # noqa: F811
    out = io.StringIO()
    call_command("curation_agreement", "--dataset", tiny_dataset.slug, stdout=out)
    body = json.loads(out.getvalue())
    n_val = sum(1 for t in TEXTS if t[3] == "val")
    n_val_multi = sum(1 for t in TEXTS if t[3] == "val" and len(t[2]) >= 2)
    assert body["images"] == n_val and body["images_multi_factor"] == n_val_multi
    kinds = [(s["selector"], s["text_field"], s["factor_text"]) for s in body["selectors"]]
    assert len([k for k in kinds if k[0] == "paper"]) == 9
    learned = next(s for s in body["selectors"] if s["selector"] == "learned")
    assert learned["trained_on"] == "train" and learned["images_multi_factor"] == n_val_multi
    model = SelectorModel.objects.get(name="learned")
    assert model.params["split"] == "train"
    assert model.metrics["n_train"] == sum(1 for t in TEXTS if t[3] == "train")
