"""The paper's selector and the learned selector on hand-made cases, with the real spaCy vectors."""

import numpy as np
import pytest

from catalog.factors import FACTOR_KEYS
from curation import topfactor
from infra.embeddings import embed_texts, embed_texts_naive, load_nlp

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def nlp():
    return load_nlp("en_core_web_md")


def mask_of(*keys: str) -> np.ndarray:
    return np.array([[k in keys for k in FACTOR_KEYS]])


def idx(key: str) -> int:
    return FACTOR_KEYS.index(key)


def test_a_single_selected_factor_is_the_top_factor_whatever_the_text(nlp):
    vecs, _ = embed_texts(nlp, ["the photo is a pencil sketch"])
    fv = topfactor.factor_vectors(nlp, "wording")
    assert topfactor.paper_select(vecs, mask_of("darker"), fv).tolist() == [idx("darker")]


def test_paper_selector_picks_the_factor_closest_to_the_text(nlp):
    vecs, _ = embed_texts(nlp, ["it is very dark, the lighting is darker"])
    fv = topfactor.factor_vectors(nlp, "wording")
    assert topfactor.paper_select(vecs, mask_of("darker", "subcategory", "person_blocking"), fv).tolist() == [
        idx("darker")
    ]


def test_text_without_vectors_falls_back_to_the_first_selected_factor_in_form_order(nlp):
    vecs, has = embed_texts(nlp, ["xqzt vvbn"])
    assert not has[0] and not vecs.any()
    fv = topfactor.factor_vectors(nlp, "wording")
    # pose comes before background in the form, so it wins the all-zero tie.
    assert topfactor.paper_select(vecs, mask_of("background", "pose"), fv).tolist() == [idx("pose")]


def test_ties_go_to_the_factor_first_in_form_order():
    scores = np.array([[0.5] * len(FACTOR_KEYS)])
    assert topfactor.masked_argmax(scores, mask_of("texture", "color", "shape")).tolist() == [idx("color")]


def test_no_selected_factor_gives_no_top_factor(nlp):
    vecs, _ = embed_texts(nlp, ["nothing differs"])
    fv = topfactor.factor_vectors(nlp, "key")
    assert topfactor.paper_select(vecs, mask_of(), fv).tolist() == [topfactor.NO_FACTOR]


def test_fast_embeddings_equal_spacy_doc_vectors(nlp):
    texts = ["A dog, in the snow!", "", "xqzt", "cropped view of a RED car", "   ", "sepia image of tiger"]
    fast, has_fast = embed_texts(nlp, texts)
    ref, has_ref = embed_texts_naive(nlp, texts)
    np.testing.assert_allclose(fast, ref, atol=1e-5)
    assert has_fast.tolist() == has_ref.tolist() == [True, False, False, True, False, True]


def test_learned_selector_only_chooses_among_selected_factors_and_reloads(nlp, tmp_path):
    rng = np.random.default_rng(0)
    texts = ["it is dark"] * 20 + ["a striped pattern"] * 20
    vecs, _ = embed_texts(nlp, texts)
    mask = np.zeros((40, len(FACTOR_KEYS)), dtype=bool)
    mask[:, idx("darker")] = mask[:, idx("pattern")] = True
    mask[rng.random(40) < 0.5, idx("pose")] = True
    top = np.array([idx("darker")] * 20 + [idx("pattern")] * 20)
    fv = topfactor.factor_vectors(nlp, "wording")
    model = topfactor.LearnedSelector.train(vecs, mask, top, fv, factor_text="wording", text_field="both")
    test_vecs, _ = embed_texts(nlp, ["dark", "stripes", "dark"])
    test_mask = np.vstack([mask_of("darker", "pattern"), mask_of("darker", "pattern"), mask_of("pose", "color")])
    pred = model.select(test_vecs, test_mask, fv)
    assert pred[:2].tolist() == [idx("darker"), idx("pattern")]
    assert pred[2] in (idx("pose"), idx("color"))  # never a factor the annotator did not select
    path = tmp_path / "m.joblib"
    path.write_bytes(model.dumps())
    again = topfactor.LearnedSelector.load(path)
    assert again.select(test_vecs, test_mask, fv).tolist() == pred.tolist()


def test_learned_selector_refuses_training_data_with_one_class(nlp):
    vecs, _ = embed_texts(nlp, ["dark", "dark"])
    mask = np.vstack([mask_of("darker", "pose")] * 2)
    with pytest.raises(ValueError, match="two different top factors"):
        topfactor.LearnedSelector.train(
            vecs,
            mask,
            np.array([idx("darker")] * 2),
            topfactor.factor_vectors(nlp, "key"),
            factor_text="key",
            text_field="both",
        )
