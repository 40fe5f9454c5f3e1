"""Agreement metrics against published worked examples and established packages."""

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from review import metrics

pytestmark = pytest.mark.embedded

# Wikipedia's worked example for Fleiss' kappa (10 subjects, 14 raters, 5 categories).
WIKIPEDIA_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# A hand-made table shaped like Fleiss (1971): 30 items, 6 raters, 5 categories.
SIX_RATER_TABLE = np.array(
    [
        [0, 0, 0, 6, 0],
        [0, 1, 4, 0, 1],
        [0, 0, 0, 0, 6],
        [0, 3, 0, 3, 0],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [2, 0, 4, 0, 0],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [6, 0, 0, 0, 0],
        [2, 0, 4, 0, 0],
        [2, 0, 0, 0, 4],
        [0, 0, 0, 0, 6],
        [0, 0, 6, 0, 0],
        [0, 0, 0, 0, 6],
        [2, 0, 0, 0, 4],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 0, 6],
        [6, 0, 0, 0, 0],
        [2, 0, 0, 0, 4],
        [0, 0, 0, 0, 6],
        [0, 0, 0, 6, 0],
        [0, 5, 0, 0, 1],
        [0, 5, 0, 1, 0],
        [0, 5, 1, 0, 0],
        [0, 0, 0, 0, 6],
    ]
)


def test_fleiss_kappa_matches_wikipedia_worked_example():
    assert metrics.fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(0.210, abs=5e-4)
    assert metrics.raw_agreement(WIKIPEDIA_TABLE) == pytest.approx(0.378, abs=5e-4)


def test_fleiss_kappa_matches_statsmodels_on_a_six_rater_table():
    assert metrics.fleiss_kappa(SIX_RATER_TABLE) == pytest.approx(sm_fleiss_kappa(SIX_RATER_TABLE), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_kappa_matches_statsmodels_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    raters, cats = rng.integers(2, 7), rng.integers(2, 5)
    labels = rng.integers(0, cats, size=(rng.integers(20, 200), raters))
    # Bias a share of the items towards agreement so kappa is not always near zero.
    labels[: len(labels) // 2] = labels[: len(labels) // 2, :1]
    table = np.stack([(labels == c).sum(1) for c in range(cats)], axis=1)
    assert metrics.fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)


def test_fleiss_kappa_computes_bootstrap_batches_in_one_call():
    batch = np.stack([WIKIPEDIA_TABLE, SIX_RATER_TABLE[:10]])
    out = metrics.fleiss_kappa(batch)
    assert out[0] == pytest.approx(metrics.fleiss_kappa(WIKIPEDIA_TABLE))
    assert out[1] == pytest.approx(metrics.fleiss_kappa(SIX_RATER_TABLE[:10]))


@pytest.mark.parametrize("seed", range(5))
def test_krippendorff_alpha_matches_the_krippendorff_package_with_missing_answers(seed):
    rng = np.random.default_rng(100 + seed)
    n_raters, n_units, cats = rng.integers(3, 8), rng.integers(20, 150), rng.integers(2, 4)
    truth = rng.integers(0, cats, n_units)
    data = np.where(rng.random((n_raters, n_units)) < 0.7, truth, rng.integers(0, cats, (n_raters, n_units))).astype(
        float
    )
    data[rng.random(data.shape) < 0.3] = np.nan  # not every rater rates every unit
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    counts = np.stack([(data == c).sum(0) for c in range(cats)], axis=1)
    assert metrics.krippendorff_alpha_nominal(counts) == pytest.approx(expected, abs=1e-9)


def test_krippendorff_alpha_matches_krippendorffs_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: alpha = 0.743.
    nan = np.nan
    data = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    counts = np.stack([(data == c).sum(0) for c in range(1, 6)], axis=1)
    assert metrics.krippendorff_alpha_nominal(counts) == pytest.approx(0.743, abs=5e-4)


def test_pack_ratings_builds_items_by_slots_by_factors():
    packed = metrics.pack_ratings(
        np.array([7, 3, 7, 7]), np.array([1, 1, 2, 3]), np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    )
    assert packed.item_ids.tolist() == [3, 7]
    assert packed.M.sum(1).tolist() == [1, 3]
    assert packed.X[1, :, 0].tolist() == [True, True, False]
    assert packed.rater[1].tolist() == [1, 2, 3]


def test_jaccard_and_masi_follow_their_definitions():
    # Item 0: {a} vs {a,b}: Jaccard 1/2, subset -> MASI 1/2 * 2/3. Item 1: {} vs {}: full agreement.
    # Item 2: {a} vs {b}: disjoint -> 0 and 0.
    X = np.array([[[1, 0], [1, 1]], [[0, 0], [0, 0]], [[1, 0], [0, 1]]], dtype=bool)
    M = np.ones((3, 2), dtype=bool)
    jac, masi = metrics.set_agreement(X, M)
    assert jac.tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert masi.tolist() == pytest.approx([1 / 3, 1.0, 0.0])


def test_bootstrap_ci_contains_the_point_estimate():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=(300, 3))
    labels[:150] = labels[:150, :1]
    table = np.stack([(labels == 0).sum(1), (labels == 1).sum(1)], axis=1)
    lo, hi = metrics.bootstrap_ci(table, metrics.fleiss_kappa, n_boot=400)
    assert lo < metrics.fleiss_kappa(table) < hi and hi - lo < 0.3


def test_per_factor_agreement_uses_only_items_with_two_answers():
    X = np.array([[[1], [1]], [[0], [1]], [[1], [0]]], dtype=bool)
    M = np.array([[1, 1], [1, 1], [1, 0]], dtype=bool)
    (row,) = metrics.per_factor_agreement(X, M, ["pose"], n_boot=50)
    assert row["n_items"] == 2 and row["raw_agreement"] == pytest.approx(0.5)
    table = np.array([[0, 2], [1, 1]])
    assert row["fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(table), abs=1e-4)


def test_consensus_majority_and_threshold():
    votes = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 0, 1]], dtype=bool)
    selected, undecided = metrics.consensus_votes(votes, 0.5)
    assert selected.tolist() == [True, True, False, True] and not undecided.any()
    # Two thirds must agree: 2 of 3 is not above 2/3... use 0.6 so 2/3 qualifies, 0.7 so it does not.
    assert metrics.consensus_votes(votes, 0.6)[1].tolist() == [False, False, False, False]
    assert metrics.consensus_votes(votes, 0.7)[1].tolist() == [False, True, False, True]
    tie = np.array([[1], [0]], dtype=bool)
    assert metrics.consensus_votes(tie, 0.5)[1].tolist() == [True]


def test_cohen_kappa_by_group_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(5)
    a = rng.random((60, 4)) < 0.4
    b = np.where(rng.random((60, 4)) < 0.8, a, ~a)
    group = np.repeat([0, 1], 30)
    got = metrics.cohen_kappa_by_group(group, a, b, 2)
    assert got[0] == pytest.approx(cohen_kappa_score(a[:30].ravel(), b[:30].ravel()))
    assert got[1] == pytest.approx(cohen_kappa_score(a[30:].ravel(), b[30:].ravel()))


def test_grouped_median_and_drift():
    med = metrics.grouped_median(np.array([0, 0, 0, 1, 1]), np.array([5.0, 1.0, 3.0, 2.0, 4.0]), 3)
    assert med[:2].tolist() == [3.0, 3.0] and np.isnan(med[2])
    flags = np.array([[0], [0], [1], [1]])
    drift = metrics.drift_by_group(np.zeros(4, int), np.array([1, 2, 3, 4]), flags, 1)
    assert drift[0, 0] == pytest.approx(1.0)


def test_item_sums_reproduce_kappa_alpha_and_raw_agreement():
    rng = np.random.default_rng(11)
    X = rng.random((80, 4, 3)) < 0.3
    M = rng.random((80, 4)) < 0.8
    M[:, :2] = True  # every item has at least two answers
    tables = metrics.binary_table(X, M)
    kappa, alpha, raw = metrics.stats_from_sums(metrics.binary_item_features(tables).sum(0), 80)
    for f in range(3):
        assert kappa[f] == pytest.approx(metrics.fleiss_kappa(tables[f]), abs=1e-12)
        assert alpha[f] == pytest.approx(metrics.krippendorff_alpha_nominal(tables[f]), abs=1e-12)
        assert raw[f] == pytest.approx(metrics.raw_agreement(tables[f]), abs=1e-12)


def test_fast_bootstrap_agrees_with_resampling_tables():
    rng = np.random.default_rng(12)
    truth = rng.random((300, 1)) < 0.3
    X = np.where(rng.random((300, 3, 1)) < 0.85, truth[:, None, :], ~truth[:, None, :])
    M = np.ones((300, 3), dtype=bool)
    (row,) = metrics.per_factor_agreement(X, M, ["pose"], n_boot=2000)
    lo, hi = metrics.bootstrap_ci(metrics.binary_table(X, M)[0], metrics.fleiss_kappa, n_boot=2000)
    assert row["kappa_ci"][0] == pytest.approx(lo, abs=0.02) and row["kappa_ci"][1] == pytest.approx(hi, abs=0.02)
