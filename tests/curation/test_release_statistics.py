"""Statistics of a curation run over the real imported ImageNet-X release equal counts computed
independently, with pandas/scipy, straight from the release's jsonl files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from catalog.factors import FACTOR_KEYS
from catalog.importers import default_release_path
from catalog.services import IMAGENET_X_SLUG
from curation import services
from tests.conftest import committed_imagenet_x_release

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
RELEASE = default_release_path()


def release(kind: str, split: str) -> pd.DataFrame:
    return pd.read_json(RELEASE / f"imagenet_x_{split}_{kind}_factor.jsonl", lines=True)


@pytest.fixture(scope="module")
def run(django_db_setup, django_db_blocker):
    """Import the release once for this module, curate it once in-process, clean up afterwards.

    Every test below also requests `db`: pytest-django creates the test database only for
    sessions whose tests ask for it, and without one this fixture would write to (and truncate)
    the configured database itself.
    """
    with committed_imagenet_x_release(django_db_blocker):
        with django_db_blocker.unblock():
            r = services.curation_start(dataset_slug=IMAGENET_X_SLUG, enqueue=False)
            r = services.curation_run_execute(run_id=r.id)
        yield r


@pytest.mark.parametrize("split", ["val", "train"])
def test_selected_factor_counts_equal_the_multi_factor_files(run, db, split):
    expected = release("multi", split)[list(FACTOR_KEYS)].sum(axis=0).astype(int).to_dict()
    assert run.stats["factor_counts"][split]["selected"] == expected
    assert run.stats["factor_counts"][split]["images"] == len(release("multi", split))


@pytest.mark.parametrize("split", ["val", "train"])
def test_published_top_factor_counts_equal_the_top_factor_files(run, db, split):
    expected = release("top", split)[list(FACTOR_KEYS)].sum(axis=0).astype(int).to_dict()
    assert run.stats["factor_counts"][split]["reference_top"] == expected


def test_every_image_with_factors_gets_one_of_its_own_as_top_factor(run, db):
    counts = run.stats["factor_counts"]["all"]
    n_without = run.stats["selection"]["no_factor"]
    assert sum(counts["top"].values()) == counts["images"] - n_without
    assert run.status == "done" and run.processed == run.total == 60101


def test_factors_per_image_histogram_equals_the_files(run, db):
    for split in ("val", "train"):
        n = release("multi", split)[list(FACTOR_KEYS)].sum(axis=1)
        expected = {str(k): int(v) for k, v in n.value_counts().sort_index().items()}
        got = {k: v for k, v in run.stats["factors_per_image"][split].items() if v}
        assert got == expected


def test_spearman_factor_pairs_equal_pandas_and_keep_only_significant_ones(run, db):
    df = pd.concat([release("multi", "val"), release("multi", "train")])[list(FACTOR_KEYS)]
    rho = df.corr(method="spearman")
    kept = run.stats["spearman"]["factor_factor"]
    assert kept, "the release has significant factor correlations (paper Fig. 8)"
    n_tests = run.stats["spearman"]["factor_factor_tests"]
    for c in kept:
        assert c["rho"] == pytest.approx(rho.loc[c["a"], c["b"]], abs=1e-9)
        assert c["p"] < 0.05
    # A pair left out is not significant after the correction.
    kept_pairs = {(c["a"], c["b"]) for c in kept}
    for i, a in enumerate(FACTOR_KEYS):
        for b in FACTOR_KEYS[i + 1 :]:
            if (a, b) not in kept_pairs:
                p = sps.spearmanr(df[a], df[b]).pvalue
                assert np.isnan(p) or p * n_tests >= 0.05


def test_train_and_val_factor_distributions_are_tested_with_chi_square(run, db):
    table = np.array([release("multi", s)[list(FACTOR_KEYS)].sum(axis=0).to_numpy() for s in ("train", "val")])
    chi2, p, dof, _ = sps.chi2_contingency(table)
    got = run.stats["split_difference"]["selected"]
    assert got["chi2"] == pytest.approx(chi2) and got["dof"] == dof == 15
    assert got["p"] == pytest.approx(p)
