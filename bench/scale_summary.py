"""Summarise repeated annotation_load.py runs: medians per size and fill, and 60,000 vs 3,000.

    .venv/bin/python bench/scale_summary.py bench/results/round4/annotation_scale_*.json

Prints JSON: per (images, fill) the median over the runs of requests/s, server CPU per request
(gunicorn, PostgreSQL, total), the same-run GET /healthz baseline and the ratio to it, and each
page's server CPU per view; then, per fill, the ratio of the largest size's medians to the
smallest's (issue 14's flat-cost goal: within 1.15x). Medians, because single runs on this
shared machine differ by up to a third.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def _figures(d: dict) -> dict:
    f, b = d["figures"], d["baseline"]["server_cpu_per_request"]
    base = b["gunicorn"] + b["postgresql"]
    total = f["server_cpu_total_ms_per_request"]
    return {
        "requests_per_s": f["requests_per_s"]["value"],
        "gunicorn_ms": f["server_cpu_per_request"]["gunicorn"],
        "postgresql_ms": f["server_cpu_per_request"]["postgresql"],
        "total_ms": total,
        "healthz_total_ms": round(base, 2),
        "ratio_to_healthz": round(total / base, 2),
        "pages_ms": {k: v["server_cpu_ms_per_request"] for k, v in d.get("pages", {}).items() if "error" not in v},
    }


def summarise(paths: list[str]) -> dict:
    runs: dict[tuple[int, float], list[dict]] = defaultdict(list)
    for p in paths:
        d = json.loads(Path(p).read_text())
        runs[(d["images"], d["filled_before_load"]["fraction"])].append(_figures(d))
    med = {}
    for key, rs in sorted(runs.items()):
        row = {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0] if k != "pages_ms"}
        pages = set.intersection(*(set(r["pages_ms"]) for r in rs))
        row["pages_ms"] = {p: round(statistics.median(r["pages_ms"][p] for r in rs), 2) for p in sorted(pages)}
        row["runs"] = len(rs)
        row["total_ms_each_run"] = [r["total_ms"] for r in rs]
        med[key] = row
    ratios = {}
    for fill in sorted({f for _, f in med}):
        sizes = sorted(n for n, f in med if f == fill)
        if len(sizes) < 2:
            continue
        small, large = med[(sizes[0], fill)], med[(sizes[-1], fill)]
        ratios[f"fill {fill:g}"] = {
            "sizes": [sizes[0], sizes[-1]],
            "total_ms": round(large["total_ms"] / small["total_ms"], 3),
            "pages_ms": {
                p: round(large["pages_ms"][p] / small["pages_ms"][p], 2)
                for p in small["pages_ms"]
                if p in large["pages_ms"] and small["pages_ms"][p]
            },
            "goal": 1.15,
        }
    return {
        "benchmark": "annotation_load summary",
        "unit": "ms of server CPU per request (gunicorn + PostgreSQL client backends); medians over runs",
        "by_size_and_fill": {f"{n} images, fill {f:g}": row for (n, f), row in med.items()},
        "largest_vs_smallest": ratios,
        "files": sorted(Path(p).name for p in paths),
    }


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(json.dumps(summarise(sys.argv[1:]), indent=2))
