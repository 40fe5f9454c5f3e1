"""The paper's model zoo: the toolkit's published accuracies_per_factor.csv tables. No Django."""

from __future__ import annotations

import csv
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from catalog.factors import FACTOR_KEYS

ARCHIVE = Path(__file__).resolve().parent / "reference" / "zoo_results.tar.xz"


def _float(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if x != x else x


def read_tables(archive: Path = ARCHIVE) -> Iterator[dict]:
    """Rows of every results/val/{top,multi}_factor/GROUP/KIND/accuracies_per_factor.csv."""
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or parts[-1] != "accuracies_per_factor.csv" or len(parts) < 6:
                continue
            which, group, kind = parts[-4].removesuffix("_factor"), parts[-3], parts[-2]
            fh = tar.extractfile(member)
            reader = csv.DictReader(io.StringIO(fh.read().decode("utf-8")))
            for row in reader:
                name = row.get("model") or row.get("") or ""
                worst_k = next((k for k in row if k and k.startswith("worst_") and k.endswith("_classes")), None)
                yield {
                    "group": group,
                    "name": name,
                    "which_factor": which,
                    "correctness": kind,
                    "accuracies": {k: _float(row.get(k)) for k in FACTOR_KEYS},
                    "average": _float(row.get("average")) or 0.0,
                    "worst_factor": _float(row.get("worst_factor")),
                    "worst_100_classes": _float(row.get(worst_k)) if worst_k else None,
                }
