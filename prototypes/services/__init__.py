"""Writes of the prototype service, one module per entity written:

  runs       PrototypeRun: create (with its shard rows), resume, fail, make current
  shards     PrototypeShard / PrototypeSkip: claim and score one shard
  selection  Prototype: merge a run's shards, or select from a predictions file
  check      the appendix check of the current prototypes (writes nothing)

The compute lives in prototypes/engine/ (no Django); these functions feed it the dataset's
paths and store what it returns. Tasks are enqueued by name (infra.enqueue), so nothing here
imports prototypes.tasks. Callers use `from prototypes import services`.
"""

from __future__ import annotations

from prototypes.services.check import prototypes_check
from prototypes.services.runs import (
    prototype_run_create,
    prototype_run_fail,
    prototype_run_resume,
    prototype_run_set_current,
)
from prototypes.services.selection import prototype_run_from_predictions, prototype_run_merge
from prototypes.services.shards import prototype_shard_score

__all__ = [
    "prototype_run_create",
    "prototype_run_fail",
    "prototype_run_from_predictions",
    "prototype_run_merge",
    "prototype_run_resume",
    "prototype_run_set_current",
    "prototype_shard_score",
    "prototypes_check",
]
