"""Toolkit parity: our vectorised metrics against imagenet_x.get_factor_accuracies + error_ratio."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import labels as L
from evaluation import metrics as M
from evaluation import parsing as P
from tests.evaluation.helpers import MODELS, reference_csv, write_reference

pytestmark = pytest.mark.embedded
imagenet_x = pytest.importorskip("imagenet_x")
TOL = 1e-12


def ours(folder, which, kind, *, filter_prototypes=True):
    names = sorted(p.stem for p in folder.glob("*.csv"))
    labels = L.toolkit_labels(which)
    if filter_prototypes:
        labels = labels.subset(~labels.is_prototype)
    preds = [P.parse_csv((folder / f"{n}.csv").read_bytes(), n_classes=1000) for n in names]
    pred, _, _ = M.stack([M.align(labels, p) for p in preds])
    correct, valid = M.correctness(labels, pred, kind, toolkit=True)
    table = M.toolkit_table(M.factor_counts(correct, valid, labels.factors))
    return names, table, M.error_ratio(table)


def max_diff(names, table, er, ref) -> float:
    assert list(ref.index) == names
    ref_er = imagenet_x.error_ratio(ref)
    worst = 0.0
    for col in [*M.TOOLKIT_FACTOR_ORDER, "worst_factor", "average"]:
        a, b = ref[col].to_numpy(dtype=float), table[col]
        assert (np.isnan(a) == np.isnan(b)).all(), col
        worst = max(worst, float(np.nanmax(np.abs(a - b), initial=0)))
    for col in M.TOOLKIT_FACTOR_ORDER:
        a, b = ref_er[col].to_numpy(dtype=float), er[col]
        assert (np.isnan(a) == np.isnan(b)).all(), col
        worst = max(worst, float(np.nanmax(np.abs(a - b), initial=0)))
    return worst


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    return write_reference(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("which", ["top", "multi"])
@pytest.mark.parametrize("kind", ["class", "real_class", "metaclass"])
def test_reference_models_match_the_toolkit_exactly(reference_dir, which, kind):
    names, table, er = ours(reference_dir, which, kind)
    ref = imagenet_x.get_factor_accuracies(str(reference_dir), which_factor=which, error_type=kind)
    assert max_diff(names, table, er, ref) <= TOL


def test_resnet50_texture_error_ratio_with_toolkit_defaults_is_2_39(reference_dir):
    names, table, er = ours(reference_dir, "top", "class")
    i = names.index("ResNet50")
    assert round(float(table["average"][i]), 5) == 0.74669  # SOURCE.md's fact
    assert round(float(er["texture"][i]), 2) == 2.39


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    """Odd models: random guesses, one never right, one always right, one right on 30 %. (The
    toolkit needs every file to list the 50,000 images in filename_label.csv's order, so partial
    coverage is tested against hand-made answers in test_corrected.py instead.)"""
    folder = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(7)
    base = reference_csv("ViT").decode().splitlines()[1:]
    names = np.array([r.split(",")[0] for r in base])
    lab = L.toolkit_labels("top")
    rows = lab.index_of(names)
    truth = np.where(rows >= 0, lab.classes[np.maximum(rows, 0)], 0)

    def write(name, sel, pred):
        prob = rng.random(sel.sum())
        lines = [f"{a},{b},{c}" for a, b, c in zip(names[sel], pred[sel], prob, strict=True)]
        (folder / f"{name}.csv").write_text(
            "file_name,predicted_class,predicted_probability\n" + "\n".join(lines) + "\n"
        )

    allrows = np.ones(len(names), bool)
    write("random", allrows, rng.integers(0, 1000, len(names)))
    write("never_right", allrows, (truth + 1) % 1000)
    write("perfect", allrows, truth)
    write("thirty", allrows, np.where(rng.random(len(names)) < 0.3, truth, rng.integers(0, 1000, len(names))))
    return folder


@pytest.mark.parametrize("which", ["top", "multi"])
@pytest.mark.parametrize("kind", ["class", "real_class", "metaclass"])
def test_synthetic_models_match_the_toolkit_exactly(synthetic_dir, which, kind):
    names, table, er = ours(synthetic_dir, which, kind)
    ref = imagenet_x.get_factor_accuracies(str(synthetic_dir), which_factor=which, error_type=kind)
    assert max_diff(names, table, er, ref) <= TOL


def test_prototypes_kept_matches_the_toolkit(reference_dir):
    names, table, er = ours(reference_dir, "top", "class", filter_prototypes=False)
    ref = imagenet_x.get_factor_accuracies(str(reference_dir), which_factor="top", filter_prototypes=False)
    assert max_diff(names, table, er, ref) <= TOL


def test_worst_100_classes_match_the_toolkit_definition(reference_dir):
    from imagenet_x.aggregate import worst_k_class_acc
    from imagenet_x.utils import augment_model_predictions, load_annotations, load_model_predictions

    labels = L.toolkit_labels("top").subset(~L.toolkit_labels("top").is_prototype)
    preds = load_model_predictions(str(reference_dir))[0]
    ann = augment_model_predictions(load_annotations(), {"ResNet50": preds["ResNet50"]})
    ref = float(worst_k_class_acc(ann, k=100, error_type="is_correct").iloc[0])
    p = P.parse_csv(reference_csv("ResNet50"), n_classes=1000)
    pred, _, _ = M.stack([M.align(labels, p)])
    c, v = M.correctness(labels, pred, "class", toolkit=True)
    acc, _ = M.worst_k_classes(labels, c, v, 100)
    # Ties at the 100th class are broken by class index here and by an unstable sort there, so
    # the two may pick different tied classes; the accuracy then differs in the last digits only.
    assert abs(acc[0] - ref) < 5e-3


def test_all_models_at_once_equal_one_at_a_time(reference_dir):
    labels = L.toolkit_labels("multi").subset(~L.toolkit_labels("multi").is_prototype)
    preds = [P.parse_csv(reference_csv(m), n_classes=1000) for m in MODELS]
    al = [M.align(labels, p) for p in preds]
    pred, _, _ = M.stack(al)
    together = M.factor_counts(*M.correctness(labels, pred, "class", toolkit=False), labels.factors)
    for i, a in enumerate(al):
        alone = M.factor_counts(*M.correctness(labels, a.pred[None], "class", toolkit=False), labels.factors)
        assert (alone.k[0] == together.k[i]).all() and (alone.n[0] == together.n[i]).all()
