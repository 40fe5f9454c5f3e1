"""Downloads of an evaluation: the toolkit's accuracies_per_factor.csv layout, and JSON."""

from __future__ import annotations

import csv
import io

from evaluation.metrics import TOOLKIT_FACTOR_ORDER


def accuracies_csv(rows: list[tuple[str, dict, int]]) -> str:
    """`model,<16 factors in the toolkit's order>,worst_factor,average,worst_100_classes`, one row
    per (model name, kind block, k) so that notebooks reading the toolkit's tables keep working."""
    buf = io.StringIO()
    k = rows[0][2] if rows else 100
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", *TOOLKIT_FACTOR_ORDER, "worst_factor", "average", f"worst_{k}_classes"])
    for name, block, kk in rows:
        f = block["factors"]
        accs = [f[key]["accuracy"] for key in TOOLKIT_FACTOR_ORDER]
        finite = [a for a in accs if a is not None]
        w.writerow(
            [name, *("" if a is None else repr(a) for a in accs), repr(min(finite)) if finite else "",
             repr(block["overall"]["accuracy"]), "" if block.get(f"worst_{kk}_classes") is None else repr(block[f"worst_{kk}_classes"])]
        )  # fmt: skip
    return buf.getvalue()
