"""Shared test data: the shipped reference predictions and tiny hand-made label sets."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from catalog.factors import FACTOR_KEYS, META_LABELS
from evaluation.labels import LabelSet

REFERENCE = Path(__file__).resolve().parents[2] / "evaluation" / "reference" / "model_predictions"
MODELS = ("DINO", "ResNet50", "SimCLR", "ViT")


@lru_cache(maxsize=8)
def reference_csv(model: str) -> bytes:
    return gzip.decompress((REFERENCE / f"{model}.csv.gz").read_bytes())


def write_reference(folder: Path, models=MODELS) -> Path:
    for m in models:
        (folder / f"{m}.csv").write_bytes(reference_csv(m))
    return folder


def tiny_labels(classes, factors, class_meta, *, real=None, names=None) -> LabelSet:
    """A LabelSet from lists: factors as lists of factor keys per image, class_meta as meta-label names."""
    n = len(classes)
    f = np.zeros((n, len(FACTOR_KEYS)), dtype=bool)
    for i, keys in enumerate(factors):
        for k in keys:
            f[i, FACTOR_KEYS.index(k)] = True
    names = np.array(names or [f"img_{i:03d}" for i in range(n)], dtype=str)
    cm = np.array([META_LABELS.index(m) for m in class_meta], dtype=np.int8)
    labels = LabelSet(file_names=names, classes=np.array(classes, dtype=np.int32), factors=f, class_meta=cm,
                      is_prototype=np.zeros(n, dtype=bool))  # fmt: skip
    if real is not None:
        keys = sorted(i * len(cm) + lab for i, s in enumerate(real) for lab in s)
        labels.real_keys = np.array(keys, dtype=np.int64)
        labels.real_known = np.array([bool(s) for s in real])
    return labels
