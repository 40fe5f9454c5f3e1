"""Prototype scoring engine: pure torch/torchvision/Pillow, no Django import.

ImageNet-X's prototypes of a class are the images a ResNet-50 classifies correctly with
the highest predicted probability, three per class. This package scores (path, true class)
pairs with any torchvision classifier and keeps, while it streams, a per-class top-k of the
correctly classified images (and, for --fill-incorrect, a per-class top-k of the incorrect
ones ranked by the true class's probability). Nothing grows with the number of images: no
N x 1000 logits are kept, only k entries per class.

It runs on a bare GPU box (bench/prototypes.py --standalone), inside a Celery worker, or from
`manage.py compute_prototypes`; the Django side (prototypes/services/) only feeds it paths
and stores what it returns. The import-linter contract "no Django in prototypes.engine" keeps
it that way.

Modules, in the order the data flows:
  decode       items, skip reasons, the weights' preprocessing, PIL decoding, the Dataset
  topk         the streaming per-class top-k (TopKState) and the selection rule
  model        building a classifier with its weights (enum, checkpoint, random)
  scoring      resolving device options and scoring items into a TopKState
  predictions  the imagenet-x toolkit's predictions CSV, written and read
Callers use the names re-exported here: `from prototypes import engine; engine.score(...)`.
"""

from __future__ import annotations

from prototypes.engine.decode import (
    C_ALPHA,
    C_CMYK,
    C_DRAFT,
    C_GRAYSCALE,
    C_OTHER_MODE,
    C_PALETTE,
    R_LABEL,
    R_MISSING,
    R_TOO_LARGE,
    R_TRUNCATED,
    R_UNREADABLE,
    Batch,
    ImageItems,
    Item,
    Preprocess,
    Skip,
    collate,
    decode_image,
    reason_kind,
)
from prototypes.engine.errors import EngineError
from prototypes.engine.model import (
    DEFAULT_MODEL,
    DEFAULT_WEIGHTS,
    LoadedModel,
    ModelSpec,
    file_sha256,
    load_model,
    normalize_weights_name,
)
from prototypes.engine.predictions import (
    PRED_COLUMNS,
    TRUE_PROB_COLUMN,
    PredictionRow,
    PredictionWriter,
    predictions_have_true_prob,
    read_predictions,
    state_from_predictions,
)
from prototypes.engine.scoring import (
    PredictionSink,
    Resolved,
    ScoreOptions,
    ScoreResult,
    cpu_count,
    cpu_has_native_bf16,
    library_versions,
    resolve,
    score,
)
from prototypes.engine.topk import DEFAULT_K, Entry, Selected, TopKState

__all__ = [
    "C_ALPHA",
    "C_CMYK",
    "C_DRAFT",
    "C_GRAYSCALE",
    "C_OTHER_MODE",
    "C_PALETTE",
    "DEFAULT_K",
    "DEFAULT_MODEL",
    "DEFAULT_WEIGHTS",
    "PRED_COLUMNS",
    "R_LABEL",
    "R_MISSING",
    "R_TOO_LARGE",
    "R_TRUNCATED",
    "R_UNREADABLE",
    "TRUE_PROB_COLUMN",
    "Batch",
    "EngineError",
    "Entry",
    "ImageItems",
    "Item",
    "LoadedModel",
    "ModelSpec",
    "PredictionRow",
    "PredictionSink",
    "PredictionWriter",
    "Preprocess",
    "Resolved",
    "ScoreOptions",
    "ScoreResult",
    "Selected",
    "Skip",
    "TopKState",
    "collate",
    "cpu_count",
    "cpu_has_native_bf16",
    "decode_image",
    "file_sha256",
    "library_versions",
    "load_model",
    "normalize_weights_name",
    "predictions_have_true_prob",
    "read_predictions",
    "reason_kind",
    "resolve",
    "score",
    "state_from_predictions",
]
