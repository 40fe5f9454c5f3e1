"""Writes of the curation app, one module per entity written; re-exported so callers write `services.x`.

- runs.py: start a run (plan its chunks), pending chunks, fail, restart
- chunks.py: compute and store one chunk's results
- finalise.py: statistics, figures and the run's "done" mark; run a whole run in-process
- selector_models.py: the top-factor selectors (the one place a selector name maps to its
  implementation) and the learned selector's stored models
- meta_labels.py: classes' meta-labels
"""

from curation.services.chunks import compute_chunk, curation_chunk_process
from curation.services.finalise import curation_finalise, curation_run_execute, results_frame
from curation.services.meta_labels import image_class_meta_label_set, image_classes_meta_labels_derive
from curation.services.runs import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    RunNotReady,
    curation_run_fail,
    curation_run_pending_chunks,
    curation_run_restart,
    curation_runs_awaiting_finalise,
    curation_start,
)
from curation.services.selector_models import (
    SELECTORS,
    _learned,
    select_top_factors,
    selector_model_train,
    selector_params,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "SELECTORS",
    "RunNotReady",
    "_learned",
    "compute_chunk",
    "curation_chunk_process",
    "curation_finalise",
    "curation_run_execute",
    "curation_run_fail",
    "curation_run_pending_chunks",
    "curation_runs_awaiting_finalise",
    "curation_run_restart",
    "curation_start",
    "image_class_meta_label_set",
    "image_classes_meta_labels_derive",
    "results_frame",
    "select_top_factors",
    "selector_model_train",
    "selector_params",
]
