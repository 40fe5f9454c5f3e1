"""The paper's appendix check of the current prototypes against another model or a predictions
file. Writes nothing; it sits with the services because it drives the engine like a run does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.models import Dataset
from infra.errors import DomainError, NotFound
from prototypes import engine
from prototypes.selectors import current_run


def prototypes_check(
    *,
    dataset: Dataset,
    spec: engine.ModelSpec | None = None,
    predictions: str | None = None,
    options: engine.ScoreOptions | None = None,
) -> dict[str, Any]:
    """The paper's appendix check: accuracy of another model (or predictions file) on the current
    prototypes. Writes nothing; it lives here because it drives the engine like a run does."""
    run = current_run(dataset_id=dataset.id)
    if run is None:
        raise NotFound(f"Dataset {dataset.slug} has no current prototype run.")
    protos = list(run.prototypes.select_related("image", "image_class", "image__dataset"))
    if not protos:
        raise DomainError(f"Prototype run {run.pk} has no prototypes.")
    truth = {p.image.file_name: (p.image_class.index, p.filled) for p in protos}
    preds: dict[str, int] = {}
    if predictions:
        if not Path(predictions).is_file():
            raise DomainError(f"--predictions {predictions}: no such file.", field="predictions")
        try:
            for row in engine.read_predictions(predictions):
                if isinstance(row, engine.PredictionRow) and row.key in truth:
                    preds[row.key] = row.predicted
        except engine.EngineError as exc:
            raise DomainError(str(exc), field="predictions")
        checker = f"predictions:{Path(predictions).name}"
    elif spec is not None:
        try:
            loaded = engine.load_model(spec)
        except engine.EngineError as exc:
            raise DomainError(str(exc), field="weights")
        items = [engine.Item(p.image.file_name, str(p.image.path), p.image_class.index) for p in protos]
        engine.score(items, loaded, options, sink=lambda key, label, pred, prob, tp: preds.__setitem__(key, pred))
        checker = f"{spec.name}:{loaded.weights_id}"
    else:
        raise DomainError("Give a model or a predictions file to check the prototypes with.")
    n = sum(1 for key in truth if key in preds)
    correct = sum(1 for key, (label, _) in truth.items() if preds.get(key) == label)
    not_filled = [key for key, (_, filled) in truth.items() if not filled and key in preds]
    correct_nf = sum(1 for key in not_filled if preds[key] == truth[key][0])
    return {
        "run": run.pk,
        "checker": checker,
        "prototypes": len(truth),
        "checked": n,
        "missing": len(truth) - n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "accuracy_excluding_filled": correct_nf / len(not_filled) if not_filled else None,
    }
