"""Per-image predictions stored compactly: one .npz per evaluation (no 50,000 rows per model in the
database). Aligned to the rows of the label set (all annotated images of the split, prototypes
included), so that any filtering can be recomputed from it. No Django imports."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from evaluation.labels import LabelSet
from evaluation.metrics import Aligned


def label_fingerprint(labels: LabelSet) -> str:
    """Identifies the row order the stored arrays refer to."""
    h = hashlib.sha256()
    h.update("\n".join(labels.file_names.tolist()).encode())
    return h.hexdigest()[:16]


def predictions_bytes(aligned: Aligned, fingerprint: str) -> bytes:
    arrays = {"pred": aligned.pred.astype(np.int16), "fingerprint": np.array(fingerprint)}
    if aligned.prob is not None:
        arrays["prob"] = aligned.prob
    if aligned.correct5 is not None:
        arrays["correct5"] = np.packbits(aligned.correct5)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_predictions(path: Path, aligned: Aligned, fingerprint: str) -> int:
    data = predictions_bytes(aligned, fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def read_predictions(path: Path, labels: LabelSet, *, n_predictions: int = 0, n_unknown: int = 0) -> Aligned:
    with np.load(path, allow_pickle=False) as z:
        if str(z["fingerprint"]) != label_fingerprint(labels):
            raise ValueError(f"{path.name} was stored against other labels")
        pred = z["pred"].astype(np.int32)
        prob = z["prob"] if "prob" in z.files else None
        c5 = np.unpackbits(z["correct5"])[: labels.n].astype(bool) if "correct5" in z.files else None
    return Aligned(pred, prob, c5, n_predictions, n_unknown)
