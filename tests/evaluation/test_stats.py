"""Intervals and tests against statsmodels and scipy; the error-ratio interval's coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evaluation import stats

pytestmark = pytest.mark.embedded


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (111, 282), (34430, 46110), (1, 3)])
def test_wilson_equals_statsmodels(k, n):
    lo, hi = stats.wilson(np.array([k]), np.array([n]))
    ref = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert lo[0] == pytest.approx(ref[0], abs=1e-12) and hi[0] == pytest.approx(ref[1], abs=1e-12)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 9), (12, 12), (17, 54), (200, 150), (0, 30)])
def test_mcnemar_equals_statsmodels(b, c):
    exact = b + c < 25
    ref = sm_mcnemar([[10, b], [c, 10]], exact=exact, correction=True)
    assert stats.mcnemar(np.array([b]), np.array([c]))[0] == pytest.approx(ref.pvalue if b + c else 1.0, abs=1e-12)


def test_holm_equals_statsmodels():
    p = np.random.default_rng(1).random(16) ** 3
    assert np.allclose(stats.holm(p[None])[0], multipletests(p, method="holm")[1], atol=1e-15)


def test_alexander_govern_equals_scipy():
    rng = np.random.default_rng(2)
    g = {"a": rng.normal(1, 0.2, 30), "b": rng.normal(1.2, 0.3, 20), "c": rng.normal(1.0, 0.1, 12)}
    ours = stats.alexander_govern(g)
    ref = sps.alexandergovern(*g.values())
    assert ours["pvalue"] == pytest.approx(ref.pvalue) and ours["statistic"] == pytest.approx(ref.statistic)
    assert stats.alexander_govern({"only": g["a"]}) is None


@pytest.mark.parametrize(
    ("n_f", "e_f", "n_r", "e_r"), [(300, 0.6, 46000, 0.25), (80, 0.35, 5000, 0.2), (1500, 0.3, 20000, 0.3)]
)
def test_error_ratio_interval_covers_the_truth_95_percent_of_the_time(n_f, e_f, n_r, e_r):
    rng = np.random.default_rng(11)
    sims = 4000
    kf = rng.binomial(n_f, e_f, sims)
    kr = rng.binomial(n_r, e_r, sims)
    truth = e_f / ((n_f * e_f + n_r * e_r) / (n_f + n_r))
    lo, hi = stats.error_ratio_interval(kf, np.full(sims, n_f), kf + kr, np.full(sims, n_f + n_r))
    coverage = np.mean((lo <= truth) & (truth <= hi))
    assert 0.93 <= coverage <= 0.97, coverage


def test_paired_difference_interval_covers_the_truth():
    rng = np.random.default_rng(5)
    n, sims = 400, 3000
    # P(A right, B wrong) = 0.12, P(A wrong, B right) = 0.07 -> true difference 0.05
    cells = rng.multinomial(n, [0.12, 0.07, 0.81], sims)
    d, lo, hi = stats.paired_difference(cells[:, 0], cells[:, 1], np.full(sims, n))
    assert 0.93 <= np.mean((lo <= 0.05) & (0.05 <= hi)) <= 0.97


def test_factor_vs_rest_is_the_pooled_two_proportion_z_test():
    from statsmodels.stats.proportion import proportions_ztest

    p = stats.factor_vs_rest(np.array([171]), np.array([282]), np.array([11680]), np.array([46110]))
    ref = proportions_ztest([171, 11680 - 171], [282, 46110 - 282])[1]
    assert p[0] == pytest.approx(ref, rel=1e-9)
