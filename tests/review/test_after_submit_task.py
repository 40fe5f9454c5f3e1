"""A submitted answer is checked by a real Celery worker after commit: consistency flags appear."""

import time

import pytest

from review.models import AuditEvent, ConsistencyFlag
from tests.review.conftest import answer, make_images


@pytest.mark.postgres
@pytest.mark.slow
def test_worker_flags_a_submitted_answer_after_commit(celery_worker, tmp_path, annotator):
    img = make_images(tmp_path / "task", 1)[0]
    ann = answer(img, annotator, ["pose"], justification="Much darker than the prototypes.")
    deadline = time.monotonic() + 60  # the worker loads the spaCy vectors once (a few seconds)
    while time.monotonic() < deadline and not ConsistencyFlag.objects.filter(annotation=ann).exists():
        time.sleep(0.25)
    flag = ConsistencyFlag.objects.get(annotation=ann)
    assert flag.kind == "mentions_unticked" and flag.factor == "darker" and flag.annotation_version == 1
    assert AuditEvent.objects.filter(annotation=ann, action="flag").count() == 1
