import io

import pytest

from catalog.models import Annotation
from review.models import ConsistencyFlag
from tests.annotator.conftest import make_dataset


@pytest.mark.embedded
def test_demo_gives_reviewers_answers_to_audit_and_adjudicate_once(db, tmp_path):
    from django.contrib.auth import get_user_model

    from annotator import demo as annotator_demo
    from catalog.services import demo_users_ensure
    from review import demo, selectors

    make_dataset(tmp_path, n_images=20, n_gold=14, slug="demo")
    demo_users_ensure()
    annotator_demo.setup(stdout=io.StringIO())
    out = io.StringIO()
    demo.setup(stdout=out)
    answers = Annotation.objects.filter(source="user")
    assert answers.filter(annotator__username="annotator2").exists()
    assert answers.filter(annotator__username="annotator3").exists()
    assert not answers.filter(annotator__username="annotator").exists()  # the demo annotator's work is left
    assert ConsistencyFlag.objects.filter(kind="contradicts_ticked", factor="darker").exists()
    reviewer = get_user_model().objects.get(username="reviewer")
    kinds = {i.kind for i in selectors.audit_queue(reviewer=reviewer)}
    assert {"flagged", "disagreement"} <= kinds
    n = answers.count()
    demo.setup(stdout=io.StringIO())
    assert Annotation.objects.filter(source="user").count() == n
