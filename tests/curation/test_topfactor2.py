"""learned-2 (curation/topfactor2.py) on hand-made cases, with the real spaCy vectors; no database."""

import io
import pickle

import numpy as np
import pytest

from catalog.factors import FACTOR_KEYS
from curation import topfactor, topfactor2
from infra.embeddings import load_nlp

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def nlp():
    return load_nlp("en_core_web_md")


@pytest.fixture(scope="module")
def fv(nlp):
    return topfactor.factor_vectors(nlp, "wording")


def idx(key: str) -> int:
    return FACTOR_KEYS.index(key)


def mask_of(*keys: str) -> list[bool]:
    return [k in keys for k in FACTOR_KEYS]


# Darker is the top factor when the text speaks of light, style when it speaks of drawing, even
# though both images also tick pose/background (ticked often, seldom the main factor).
CASES = [
    ("the room is very dark and dim", "dark", ("darker", "background"), "darker"),
    ("a pencil drawing of the object", "sketch", ("style", "pose"), "style"),
    ("photo taken at night, hardly any light", "night", ("darker", "pose"), "darker"),
    ("a cartoon painting", "drawing", ("style", "background"), "style"),
]


def rows_of(cases, split="train", source="published", first_id=0) -> topfactor2.LabelledRows:
    return topfactor2.LabelledRows(
        justifications=[c[0] for c in cases],
        one_words=[c[1] for c in cases],
        mask=np.array([mask_of(*c[2]) for c in cases]),
        label=np.array([idx(c[3]) for c in cases]),
        splits=[split] * len(cases),
        sources=[source] * len(cases),
        image_ids=list(range(first_id, first_id + len(cases))),
    )


@pytest.fixture(scope="module")
def model(nlp, fv):
    return topfactor2.TextSelector.train(
        rows_of(CASES * 3), factor_vecs=fv, nlp=nlp, config=topfactor2.Config(min_df=1)
    )


def test_learned2_picks_the_factor_the_text_is_about(model, nlp):
    pred = model.select(
        ["it is so dark here", "a drawing in pencil"],
        ["dark", "sketch"],
        np.array([mask_of("darker", "background"), mask_of("style", "pose")]),
        nlp=nlp,
    )
    assert pred.tolist() == [idx("darker"), idx("style")]


def test_learned2_only_chooses_among_the_selected_factors(model, nlp):
    # Text about darkness, but darker is not ticked: the choice stays among what was ticked,
    # including factors never seen as a top factor in training (color, shape).
    pred = model.select(
        ["it is so dark here", "it is so dark here", "nothing", "dark"],
        ["dark", "dark", "", "dark"],
        np.array([mask_of("pose", "background"), mask_of("color", "shape"), mask_of(), mask_of("texture")]),
        nlp=nlp,
    )
    assert pred[0] in (idx("pose"), idx("background"))
    assert pred[1] == idx("color")  # neither seen: the first selected in form order... color comes before shape
    assert pred[2] == topfactor2.NO_FACTOR
    assert pred[3] == idx("texture")  # a single selected factor is the top factor whatever the text


def test_training_refuses_rows_of_the_val_split(nlp, fv):
    rows = topfactor2.LabelledRows.concat([rows_of(CASES * 3), rows_of(CASES[:1], split="val", first_id=100)])
    with pytest.raises(topfactor2.NotTrainable, match=r"1 training row\(s\) come from split\(s\) \['val'\]"):
        topfactor2.TextSelector.train(rows, factor_vecs=fv, nlp=nlp)
    with pytest.raises(topfactor2.NotTrainable, match="val"):
        topfactor2.cross_validate(
            rows, factor_vecs=fv, vectors=topfactor2.embed_pair(nlp, rows.justifications, rows.one_words), configs=[]
        )


def test_training_needs_two_different_top_factors(nlp, fv):
    with pytest.raises(topfactor2.NotTrainable, match="two different top factors"):
        topfactor2.TextSelector.train(rows_of(CASES[:1] * 4), factor_vecs=fv, nlp=nlp)


def test_rows_whose_label_is_not_selected_are_skipped_and_counted(nlp, fv):
    bad = [("dark room", "dark", ("pose", "background"), "darker")]
    m = topfactor2.TextSelector.train(rows_of(CASES * 2 + bad), factor_vecs=fv, nlp=nlp)
    assert (m.train_info["n_train"], m.train_info["n_skipped"]) == (8, 1)
    assert m.train_info["splits"] == ["train"] and m.train_info["sources"] == {"published": 8}


def test_later_sources_win_for_the_same_image():
    published = rows_of(CASES[:2])  # image 0: darker
    corrected = rows_of(
        [("the room is very dark and dim", "dark", ("darker", "background"), "background")], source="review"
    )
    rows = topfactor2.LabelledRows.concat([published, corrected])
    assert len(rows) == 2 and rows.image_ids == [0, 1]
    assert rows.label.tolist() == [idx("background"), idx("style")] and rows.sources == ["review", "published"]


def test_round_trip_gives_the_same_choices_and_no_pickle_is_read(model, nlp):
    data = model.dumps()
    again = topfactor2.TextSelector.loads(data, sha256=topfactor2.sha256_bytes(data))
    texts = ["dark night", "a sketch", "weird", "bright colours"]
    ones = ["dark", "drawing", "", "light"]
    mask = np.array(
        [
            mask_of("darker", "pose"),
            mask_of("style", "background"),
            mask_of("pose", "background"),
            mask_of("brighter", "color"),
        ]
    )
    assert again.select(texts, ones, mask, nlp=nlp).tolist() == model.select(texts, ones, mask, nlp=nlp).tolist()
    assert again.config == model.config and again.train_info == model.train_info
    with pytest.raises(ValueError, match="sha256"):
        topfactor2.TextSelector.loads(data, sha256="0" * 64)
    # An upload that is a pickle (what joblib writes) is refused, never unpickled.
    with pytest.raises(ValueError):
        topfactor2.TextSelector.loads(pickle.dumps({"model": object()}))
    buf = io.BytesIO()
    np.savez(buf, meta=np.array([{"format": topfactor2.FORMAT}], dtype=object))
    with pytest.raises(ValueError):
        topfactor2.TextSelector.loads(buf.getvalue())


def test_cross_validation_scores_each_config_on_the_same_folds(nlp, fv):
    rows = rows_of(CASES * 5)
    vectors = topfactor2.embed_pair(nlp, rows.justifications, rows.one_words)
    out = topfactor2.cross_validate(
        rows,
        factor_vecs=fv,
        vectors=vectors,
        configs=[topfactor2.Config(C=1.0, min_df=1), topfactor2.Config(tfidf=False)],
        folds=4,
    )
    assert [o["folds"] for o in out] == [4, 4]
    assert all(o["images_multi_factor"] == 20 and 0 <= o["share"] <= 1 for o in out)
    assert out[0]["share"] == 1.0  # the words separate the two factors perfectly
