"""The corrected defaults on tiny hand-made label sets whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import metrics as M
from evaluation import report as R
from evaluation.parsing import Predictions
from tests.evaluation.helpers import tiny_labels

pytestmark = pytest.mark.embedded

# Classes 0 and 1 are both `other` (unrelated), 2 and 3 are both `dog`.
META = ["other", "other", "dog", "dog"]


def preds(labels, classes):
    return Predictions(file_names=labels.file_names.copy(), predicted_class=np.array(classes, dtype=np.int32))


def test_empty_real_sets_are_left_out_of_real_accuracy_by_default():
    labels = tiny_labels(
        classes=[0, 1, 2, 3], factors=[["pose"], ["pose"], ["color"], ["color"]], class_meta=META,
        real=[{0}, set(), {2, 3}, set()],
    )  # fmt: skip
    pred = M.align(labels, preds(labels, [0, 1, 3, 3])).pred[None]
    c, v = M.correctness(labels, pred, "real_class", toolkit=False)
    counts = M.factor_counts(c, v, labels.factors)
    assert (counts.total[0], counts.correct[0]) == (2, 2)  # two images have ReaL labels, both right
    c, v = M.correctness(labels, pred, "real_class", toolkit=True)
    counts = M.factor_counts(c, v, labels.factors)
    assert (counts.total[0], counts.correct[0]) == (4, 2)  # the toolkit counts the two empty sets wrong


def test_other_is_not_a_meta_label_match_between_different_classes():
    labels = tiny_labels(classes=[0, 1, 2, 3], factors=[["pose"]] * 4, class_meta=META)
    # 0 -> 1 (other -> other, different classes), 1 -> 1 right, 2 -> 3 (dog -> dog), 3 -> 0 (dog -> other)
    pred = M.align(labels, preds(labels, [1, 1, 3, 0])).pred[None]
    c, _ = M.correctness(labels, pred, "metaclass", toolkit=False)
    assert c[0].tolist() == [False, True, True, False]
    c, _ = M.correctness(labels, pred, "metaclass", toolkit=True)
    assert c[0].tolist() == [True, True, True, False]


def test_error_ratio_by_hand():
    # 10 images: 4 with texture (1 right), 6 with pose (5 right). Overall accuracy 6/10.
    labels = tiny_labels(classes=[2] * 10, factors=[["texture"]] * 4 + [["pose"]] * 6, class_meta=META)
    pred = M.align(labels, preds(labels, [2, 3, 3, 3, 2, 2, 2, 2, 2, 3])).pred[None]
    counts = M.factor_counts(*M.correctness(labels, pred, "class", toolkit=False), labels.factors)
    i = M.FACTOR_KEYS.index("texture")
    assert counts.accuracy[0, i] == pytest.approx(0.25)
    assert counts.error_ratio[0, i] == pytest.approx(0.75 / 0.4)
    assert counts.error_ratio[0, M.FACTOR_KEYS.index("pose")] == pytest.approx((1 / 6) / 0.4)


def test_missing_predictions_and_unknown_names_are_counted_not_guessed():
    labels = tiny_labels(classes=[0, 1, 2, 3], factors=[["pose"]] * 4, class_meta=META)
    p = Predictions(
        file_names=np.array(["img_000", "img_002", "nope.jpg"]), predicted_class=np.array([0, 3, 1], np.int32)
    )
    a = M.align(labels, p)
    assert (a.n_matched, a.n_unknown, a.n_predictions) == (2, 1, 3)
    counts = M.factor_counts(*M.correctness(labels, a.pred[None], "class", toolkit=False), labels.factors)
    assert (counts.total[0], counts.correct[0]) == (2, 1)


def test_worst_k_classes_by_hand():
    labels = tiny_labels(classes=[0, 0, 1, 1, 2, 2, 3, 3], factors=[["pose"]] * 8, class_meta=META)
    pred = M.align(labels, preds(labels, [0, 0, 0, 1, 3, 3, 3, 3])).pred[None]
    c, v = M.correctness(labels, pred, "class", toolkit=False)
    acc, worst = M.worst_k_classes(labels, c, v, k=2)
    assert worst[0].tolist() == [2, 1]  # class 2: 0/2, then class 1: 1/2 (ties by index)
    assert acc[0] == pytest.approx(1 / 4)


def test_report_flags_few_images_and_says_which_mode():
    labels = tiny_labels(classes=[2] * 10, factors=[["texture"]] * 4 + [["pose"]] * 6, class_meta=META)
    p = Predictions(file_names=labels.file_names, predicted_class=np.array([2, 3, 3, 3, 2, 2, 2, 2, 2, 3], np.int32),
                    probability=np.full(10, 0.8, np.float32))  # fmt: skip
    rep = R.evaluate_batch(labels, [M.align(labels, p)], few=5)[0]
    assert rep["mode"] == "corrected" and "ReaL" in rep["note"]
    f = rep["kinds"]["class"]["factors"]
    assert f["texture"]["few_images"] and not f["pose"]["few_images"]
    assert rep["kinds"]["class"]["worst_factor"] == "texture"
    assert "real_class" not in rep["kinds"]  # no ReaL labels for this label set
    # ECE with one confidence bin: |accuracy - 0.8|
    assert rep["calibration"]["ece"]["overall"] == pytest.approx(abs(0.6 - 0.8), abs=1e-6)


def test_prevalence_shift_equals_error_ratio_minus_one_with_one_factor_per_image():
    rng = np.random.default_rng(3)
    keys = ["pose", "texture", "color", "smaller"]
    labels = tiny_labels(
        classes=list(rng.integers(0, 4, 400)), factors=[[keys[i % 4]] for i in range(400)], class_meta=META
    )
    p = preds(labels, list(rng.integers(0, 4, 400)))
    rep = R.evaluate_batch(labels, [M.align(labels, p)], toolkit=True)[0]
    for k in keys:
        assert rep["prevalence_shift"][k] == pytest.approx(rep["kinds"]["class"]["factors"][k]["error_ratio"] - 1)


def test_batched_ece_equals_the_toolkits_function_per_factor():
    from imagenet_x.aggregate import estimated_calibration_error

    from evaluation import breakdown

    rng = np.random.default_rng(9)
    keys = ["pose", "texture", "color"]
    labels = tiny_labels(
        classes=list(rng.integers(0, 4, 300)), factors=[[keys[i % 3]] for i in range(300)], class_meta=META
    )
    pred = rng.integers(0, 4, (2, 300))
    prob = rng.random((2, 300))
    c, v = M.correctness(labels, pred, "class", toolkit=False)
    got = breakdown.ece_batch(c, v, prob, labels.factors)
    for i in range(2):
        # float32 sums of the confidences: equal to ~1e-7 (ECE is shown to 3 decimals)
        assert got[i]["overall"] == pytest.approx(estimated_calibration_error(c[i].astype(float), prob[i]), abs=1e-6)
        sel = labels.factors[:, M.FACTOR_KEYS.index("texture")]
        ref = estimated_calibration_error(c[i][sel].astype(float), prob[i][sel])
        assert got[i]["texture"] == pytest.approx(ref, abs=1e-6)
        assert got[i]["smaller"] is None


def test_meta_label_counts_from_the_design_matrix_match_a_direct_count():
    rng = np.random.default_rng(4)
    labels = tiny_labels(classes=list(rng.integers(0, 4, 200)), factors=[["pose", "color"][: 1 + i % 2] for i in range(200)],
                         class_meta=META)  # fmt: skip
    pred = rng.integers(0, 4, (3, 200))
    c, v = M.correctness(labels, pred, "class", toolkit=False)
    g = M.grouped_counts(c, v, labels)
    from catalog.factors import META_LABELS

    dog = META_LABELS.index("dog")
    sel = labels.meta == dog
    pose = labels.factors[:, M.FACTOR_KEYS.index("pose")]
    assert g.ml_n[1, dog, M.FACTOR_KEYS.index("pose")] == (sel & pose).sum()
    assert g.ml_k[1, dog, M.FACTOR_KEYS.index("pose")] == (sel & pose & c[1]).sum()
    assert (g.class_k[2] == np.bincount(labels.classes[c[2]], minlength=4)).all()
