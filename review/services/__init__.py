"""Writes of the review app, one module per job (re-exported here: `from review import services`):

- decisions: accept, reject, correct
- adjudication: consensus of multi-annotated images (by a reviewer or automatically)
- checks: consistency flags and what runs after a submission
- audit: the audit trail of annotators' writes, the audit settings
- quality: the quality report kept computed for the dashboard
- tally: the per-image answer tallies checked against a recount (and repaired)
- common: who may review, the reviewer's answer (catalog.answers' rules), the audit row

Concurrency: every decision on an annotation locks its row (select_for_update) and compares the
version the reviewer saw (`expected_version`, carried by the form or the API call) with the
current one. Two reviewers acting at once: the first commits and bumps the version; the second
waits on the lock, then sees a newer version and gets a Conflict naming who decided what.
Nothing is lost: the loser's request changes nothing and the winner's decision stands.
"""

from review.services.adjudication import adjudication_auto_accept, adjudication_settle, propose_consensus, state_token
from review.services.audit import audit_record_version, audit_settings_update
from review.services.checks import consistency_check, review_after_submit, review_after_submit_many
from review.services.common import MAX_COMMENT
from review.services.decisions import review_accept, review_correct, review_reject
from review.services.quality import StoredReport, quality_report_current, quality_report_refresh
from review.services.tally import TallyCheck, review_tally_rebuild

__all__ = [
    "MAX_COMMENT",
    "adjudication_auto_accept",
    "adjudication_settle",
    "audit_record_version",
    "audit_settings_update",
    "consistency_check",
    "propose_consensus",
    "review_accept",
    "review_correct",
    "review_reject",
    "review_tally_rebuild",
    "quality_report_current",
    "quality_report_refresh",
    "StoredReport",
    "TallyCheck",
    "review_after_submit",
    "review_after_submit_many",
    "state_token",
]
