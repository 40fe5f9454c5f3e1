"""Writes of the annotator, one module per job (re-exported here: `from annotator import services`):

- campaigns: campaigns and their gold/qualification items
- leases: the queue (assignment_next), the live-lease rule, skipping
- submissions: submitting an answer and revising an own annotation
- qualification: unlocking the queue, passing or failing, resets

Answers are validated by catalog.answers (one validator for the form, the API and review).
Every function is keyword-only, typed and transactional.
"""

from annotator.services.campaigns import (
    SAMPLE_SIZE_MAX,
    campaign_counters_recount,
    campaign_create,
    campaign_set_status,
    gold_items_add,
    gold_items_add_from_reviewed,
)
from annotator.services.leases import SKIP_REASON_MAX, assignment_next, assignment_skip, live_work_leases
from annotator.services.qualification import qualification_reset
from annotator.services.submissions import REVISABLE, SubmitResult, annotation_revise, annotation_submit
from catalog.answers import (
    JUSTIFICATION_MAX,
    ONE_WORD_MAX,
    ONE_WORD_MAX_WORDS,
    TIME_ON_TASK_MAX_MS,
    Answer,
    answer_clean,
)

__all__ = [
    "JUSTIFICATION_MAX",
    "ONE_WORD_MAX",
    "ONE_WORD_MAX_WORDS",
    "REVISABLE",
    "SAMPLE_SIZE_MAX",
    "SKIP_REASON_MAX",
    "TIME_ON_TASK_MAX_MS",
    "Answer",
    "SubmitResult",
    "annotation_revise",
    "annotation_submit",
    "answer_clean",
    "assignment_next",
    "assignment_skip",
    "campaign_counters_recount",
    "campaign_create",
    "campaign_set_status",
    "gold_items_add",
    "gold_items_add_from_reviewed",
    "live_work_leases",
    "qualification_reset",
]
