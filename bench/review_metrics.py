"""Benchmark: the review app's vectorised agreement metrics against per-row Python and the reference packages.

Prints one JSON object: figures (seconds), the machine, and baselines measured in the same run:
- `per_row_python`: Fleiss' kappa computed item by item in a Python loop (what the issue forbids);
- `reference_packages`: statsmodels' fleiss_kappa + the krippendorff package, per factor, no bootstrap.
Our figure computes kappa, alpha and raw agreement for all 16 factors *with* 500-replicate
bootstrap CIs, and also checks that its point estimates equal the reference packages'.

    .venv/bin/python bench/review_metrics.py [--items 5000] [--raters 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from review import metrics  # noqa: E402  (Django-free module)


def per_row_fleiss(table: np.ndarray) -> float:
    n_items, _ = table.shape
    total = 0.0
    p_sum = [0.0] * table.shape[1]
    n_all = 0
    for i in range(n_items):  # the per-row loop the platform avoids
        n = int(table[i].sum())
        total += (sum(int(x) * int(x) for x in table[i]) - n) / (n * (n - 1))
        for j, x in enumerate(table[i]):
            p_sum[j] += int(x)
        n_all += n
    p_bar = total / n_items
    p_e = sum((s / n_all) ** 2 for s in p_sum)
    return (p_bar - p_e) / (1 - p_e)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--raters", type=int, default=3)
    ap.add_argument("--boot", type=int, default=500)
    args = ap.parse_args()
    import krippendorff
    from statsmodels.stats.inter_rater import fleiss_kappa

    rng = np.random.default_rng(0)
    truth = rng.random((args.items, 16)) < 0.2
    X = np.where(rng.random((args.items, args.raters, 16)) < 0.9, truth[:, None, :], ~truth[:, None, :])
    M = np.ones((args.items, args.raters), dtype=bool)
    keys = [f"f{i}" for i in range(16)]
    load_before = os.getloadavg()

    t0 = time.perf_counter()
    rows = metrics.per_factor_agreement(X, M, keys, n_boot=args.boot)
    ours = time.perf_counter() - t0

    tables = metrics.binary_table(X, M)
    t0 = time.perf_counter()
    loop = [per_row_fleiss(tables[f]) for f in range(16)]
    per_row = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref_k = [fleiss_kappa(tables[f]) for f in range(16)]
    ref_a = [
        krippendorff.alpha(reliability_data=X[:, :, f].T.astype(float), level_of_measurement="nominal")
        for f in range(16)
    ]
    ref = time.perf_counter() - t0

    max_diff = max(
        max(abs(r["fleiss_kappa"] - k) for r, k in zip(rows, ref_k, strict=True)),
        max(abs(r["alpha"] - a) for r, a in zip(rows, ref_a, strict=True)),
        max(abs(r["fleiss_kappa"] - k) for r, k in zip(rows, loop, strict=True)),
    )
    print(
        json.dumps(
            {
                "figure": "per-factor Fleiss kappa + Krippendorff alpha + raw agreement, 16 factors, with bootstrap CIs",
                "unit": "seconds",
                "items": args.items,
                "raters": args.raters,
                "bootstrap_replicates": args.boot,
                "ours_with_bootstrap": round(ours, 4),
                "baseline_per_row_python_kappa_only_no_bootstrap": round(per_row, 4),
                "baseline_reference_packages_no_bootstrap": round(ref, 4),
                "ratio_per_row_over_ours": round(per_row / ours, 2),
                "ratio_reference_over_ours": round(ref / ours, 2),
                "max_abs_difference_vs_references": max_diff,  # rounded to 4 decimals in our report
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "numpy": np.__version__,
                    "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
