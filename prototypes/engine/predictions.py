"""Predictions files in the imagenet-x toolkit's format: written while scoring, read back to
select prototypes without a model."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prototypes.engine.decode import R_LABEL, Skip
from prototypes.engine.errors import EngineError
from prototypes.engine.topk import DEFAULT_K, TopKState

PRED_COLUMNS = ["file_name", "predicted_class", "predicted_probability"]
# Optional extra column we write so that --fill-incorrect also works from a predictions file;
# the toolkit reads columns by name and ignores it.
TRUE_PROB_COLUMN = "true_class_probability"


class PredictionWriter:
    """Streams predictions to CSV as they are produced (nothing kept in memory)."""

    def __init__(self, path: str | Path, *, with_true_prob: bool = True) -> None:
        self.f = open(path, "w", newline="")
        self.w = csv.writer(self.f)
        self.with_true_prob = with_true_prob
        self.w.writerow(PRED_COLUMNS + ([TRUE_PROB_COLUMN] if with_true_prob else []))

    def __call__(self, key: str, label: int, predicted: int, prob: float, true_prob: float) -> None:
        row = [key, predicted, repr(prob)]
        if self.with_true_prob:
            row.append(repr(true_prob))
        self.w.writerow(row)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PredictionRow:
    key: str
    predicted: int
    prob: float
    true_prob: float | None


def read_predictions(path: str | Path) -> Iterator[PredictionRow | Skip]:
    """Rows of a predictions CSV; a malformed row yields a Skip with its line number."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in PRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EngineError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(PRED_COLUMNS)}")
        has_true = TRUE_PROB_COLUMN in (reader.fieldnames or [])
        for line, row in enumerate(reader, start=2):
            try:
                prob = float(row["predicted_probability"])
                if not (0.0 <= prob <= 1.0) or math.isnan(prob):
                    raise ValueError(f"probability {prob} outside [0, 1]")
                tp = float(row[TRUE_PROB_COLUMN]) if has_true and row.get(TRUE_PROB_COLUMN) not in (None, "") else None
                yield PredictionRow(row["file_name"], int(row["predicted_class"]), prob, tp)
            except (ValueError, TypeError) as exc:
                yield Skip(row.get("file_name") or f"line {line}", f"bad predictions row (line {line}): {exc}")


def state_from_predictions(
    rows: Iterable[PredictionRow], labels: dict[str, int], *, k: int = DEFAULT_K, num_classes: int | None = None
) -> tuple[TopKState, list[Skip]]:
    """Select prototypes without a model. Rows whose file is not in `labels` are skipped."""
    state = TopKState(k=k)
    skipped: list[Skip] = []
    for row in rows:
        if isinstance(row, Skip):
            skipped.append(row)
            continue
        label = labels.get(row.key)
        if label is None:
            skipped.append(Skip(row.key, "not in dataset"))
            continue
        if num_classes is not None and not 0 <= row.predicted < num_classes:
            skipped.append(Skip(row.key, f"{R_LABEL}: predicted {row.predicted}"))
            continue
        true_prob = row.true_prob if row.true_prob is not None else (row.prob if row.predicted == label else 0.0)
        state.add(row.key, label, row.predicted, row.prob, true_prob)
    return state, skipped


def predictions_have_true_prob(path: str | Path) -> bool:
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    return TRUE_PROB_COLUMN in header
