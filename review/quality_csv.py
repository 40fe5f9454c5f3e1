"""The quality report as CSV: one table of per-factor agreement (overall and per meta-label), the
set agreement, then one table per annotator. Columns are a contract with whoever reads the file."""

from __future__ import annotations

import csv
from typing import Any


def quality_csv_write(out, report: dict[str, Any]) -> None:
    """Write `report` (selectors.quality_report) to the file-like `out` (an HttpResponse works)."""
    w = csv.writer(out)
    w.writerow(
        [
            "table",
            "group",
            "key",
            "n",
            "fleiss_kappa",
            "kappa_lo",
            "kappa_hi",
            "alpha",
            "alpha_lo",
            "alpha_hi",
            "raw_agreement",
            "raw_lo",
            "raw_hi",
        ]
    )
    for label, rows in [("all", report["factors"])] + [
        (m["meta_label"], m["factors"]) for m in report["by_meta_label"]
    ]:
        for r in rows:
            w.writerow(
                [
                    "factor",
                    label,
                    r["factor"],
                    r["n_items"],
                    r["fleiss_kappa"],
                    *r["kappa_ci"],
                    r["alpha"],
                    *r["alpha_ci"],
                    r["raw_agreement"],
                    *r["raw_ci"],
                ]
            )
    s = report["set_agreement"]
    if s:
        w.writerow(["set", "all", "jaccard", s["n_items"], s["jaccard"], *s["jaccard_ci"]])
        w.writerow(["set", "all", "masi", s["n_items"], s["masi"], *s["masi_ci"]])
    w.writerow([])
    w.writerow(
        [
            "table",
            "annotator",
            "n_answers",
            "n_overlap_answers",
            "kappa_vs_consensus",
            "agreement_vs_consensus",
            "median_seconds",
            "gold_accuracy",
            "n_reviewed",
            "rejection_rate",
            "max_drift_factor",
            "max_drift",
        ]
    )
    for a in report["annotators"]:
        w.writerow(
            [
                "annotator",
                a["username"],
                a["n_answers"],
                a["n_overlap_answers"],
                a["kappa_vs_consensus"],
                a["agreement_vs_consensus"],
                a["median_seconds"],
                a["gold_accuracy"],
                a["n_reviewed"],
                a["rejection_rate"],
                a["max_drift_factor"],
                a["max_drift"],
            ]
        )
