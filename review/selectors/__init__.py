"""Reads of the review app, one module per job (re-exported here: `from review import selectors`):

- queue: multi-annotated images and the audit queue
- images: one image under review, its timeline; answers returned to their annotator
- quality: the quality report (metrics.py does the maths)
- final: final_annotations, review's rule for an image's final answer
"""

from review.selectors.final import final_annotations
from review.selectors.images import (
    adjudication_of,
    consensus_of,
    current_flags,
    image_answers,
    returned_annotations,
    timeline,
)
from review.selectors.quality import QualityFilter, quality_report, review_counts
from review.selectors.queue import (
    QueueItem,
    annotator_audit_rates,
    audit_queue,
    multi_annotated_images,
    sampled_annotations,
    tally_recount,
)

__all__ = [
    "QualityFilter",
    "QueueItem",
    "adjudication_of",
    "annotator_audit_rates",
    "audit_queue",
    "consensus_of",
    "current_flags",
    "final_annotations",
    "image_answers",
    "multi_annotated_images",
    "quality_report",
    "returned_annotations",
    "review_counts",
    "sampled_annotations",
    "tally_recount",
    "timeline",
]
