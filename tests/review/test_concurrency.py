"""Two reviewers acting on the same annotation at the same moment: one wins, the other gets a
clear conflict, nothing is lost. Real PostgreSQL row locks, two threads with their own connections."""

import threading

import pytest
from django.db import connection

from catalog.models import AnnotationVersion
from infra.errors import Conflict
from review import services
from review.models import AuditEvent, ReviewDecision
from tests.review.conftest import answer

pytestmark = pytest.mark.postgres


def _race(*calls):
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # collected and asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_reviewers_at_once_one_wins_the_other_gets_a_conflict(
    transactional_db, tmp_path, round_, annotator, reviewer, second_reviewer
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from tests.review.conftest import make_images

    img = make_images(tmp_path / "race", 1)[0]
    ann = answer(img, annotator, ["pose"])
    results = _race(
        lambda: services.review_accept(annotation_id=ann.pk, reviewer=reviewer, expected_version=1),
        lambda: services.review_correct(
            annotation_id=ann.pk,
            reviewer=second_reviewer,
            expected_version=1,
            factors=["darker"],
            justification="it is darker",
        ),
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1 and isinstance(losers[0], Conflict), results
    assert "Someone acted first" in losers[0].message
    ann.refresh_from_db()
    # Exactly the winner's decision is recorded, once; the original version is still there.
    decision = ReviewDecision.objects.get(annotation=ann)
    assert ann.version == 2 and ann.status == {"accept": "accepted", "correct": "corrected"}[decision.action]
    assert AnnotationVersion.objects.filter(annotation=ann).count() == 2
    assert AnnotationVersion.objects.get(annotation=ann, version=1).data["factors"] == ["pose"]
    assert AuditEvent.objects.filter(annotation=ann, action__in=["accept", "correct"]).count() == 1


def test_two_reviewers_adjudicating_at_once_one_wins(
    transactional_db, tmp_path, annotator, other_annotator, reviewer, second_reviewer
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from catalog.models import Annotation
    from tests.review.conftest import make_images

    img = make_images(tmp_path / "race2", 1)[0]
    token = services.state_token([answer(img, annotator, ["pose"]), answer(img, other_annotator, ["color"])])
    results = _race(
        *(
            (
                lambda r=r, f=f: services.adjudication_settle(
                    image_id=img.pk, reviewer=r, factors=[f], justification="x", expected_state=token
                )
            )
            for r, f in ((reviewer, "pose"), (second_reviewer, "color"))
        )
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    assert Annotation.objects.filter(image=img, source="consensus").count() == 1
