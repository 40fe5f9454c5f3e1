"""The per-image answer tallies the triggers keep, and the audit queue that reads them instead
of every answer (issue 14)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource
from review import selectors, services
from review.models import AuditSettings, ImageTally
from review.selectors.queue import _sample_page
from tests.review.conftest import answer, make_images

pytestmark = pytest.mark.embedded

_FIELDS = ("n", *(f"{k}_yes" for k in FACTOR_KEYS), "n_disagree", "has_consensus")


def _stored() -> dict[int, dict]:
    return {
        r.pop("image_id"): r
        for r in ImageTally.objects.values("image_id", *_FIELDS)
        if r["n"] or r["has_consensus"]  # a zero row is what a recount leaves out
    }


def _assert_tallies_match() -> None:
    assert _stored() == selectors.tally_recount()
    check = services.review_tally_rebuild(repair=False)
    assert check.n_wrong == 0, check


# --- tallies ------------------------------------------------------------------------------------


def test_tallies_equal_a_recount_after_every_kind_of_write(
    db, tmp_path, annotator, other_annotator, third_annotator, reviewer
):
    imgs = make_images(tmp_path / "t", 6)
    # two agreeing answers, then a third that disagrees on one factor
    a1 = answer(imgs[0], annotator, ["pose", "color"])
    answer(imgs[0], other_annotator, ["pose", "color"])
    assert ImageTally.objects.get(image=imgs[0]).n_disagree == 0
    answer(imgs[0], third_annotator, ["pose"])
    t = ImageTally.objects.get(image=imgs[0])
    assert (t.n, t.pose_yes, t.color_yes, t.n_disagree, t.has_consensus) == (3, 3, 2, 1, False)
    _assert_tallies_match()

    # an edit through save(), a rejection, a status change through a queryset update
    a1.color = False
    a1.save()
    services.review_reject(annotation_id=a1.pk, reviewer=reviewer, expected_version=a1.version, comment="check")
    Annotation.objects.filter(image=imgs[0], annotator=third_annotator).update(background=True)
    _assert_tallies_match()
    assert ImageTally.objects.get(image=imgs[0]).n_disagree == 2  # color 1 of 3, background 1 of 3

    # adjudication: a consensus, the answers superseded; the image leaves the counts
    answers = [a for a in selectors.image_answers(imgs[0]) if a.source == AnnotationSource.USER]
    services.adjudication_settle(
        image_id=imgs[0].pk,
        reviewer=reviewer,
        factors=["pose"],
        justification="majority",
        expected_state=services.state_token(answers),
    )
    t = ImageTally.objects.get(image=imgs[0])
    assert (t.n, t.n_disagree, t.has_consensus) == (0, 0, True)

    # a bulk insert (no signals), a delete, an imported record (not counted)
    Annotation.objects.bulk_create(
        [Annotation(image=imgs[1], annotator=u, pose=u == annotator) for u in (annotator, other_annotator)]
    )
    Annotation.objects.create(image=imgs[2], annotator=annotator, darker=True)  # no history: deletable
    assert ImageTally.objects.get(image=imgs[2]).n == 1
    Annotation.objects.filter(image=imgs[2]).delete()
    Annotation.objects.create(image=imgs[3], source=AnnotationSource.IMPORTED, source_release="r", pose=True)
    _assert_tallies_match()
    # an answer moved to another image (a repair by hand): counted out of one, into the other
    moved = Annotation.objects.create(image=imgs[4], annotator=annotator, color=True)
    Annotation.objects.filter(pk=moved.pk).update(image=imgs[5])
    _assert_tallies_match()
    assert ImageTally.objects.get(image=imgs[4]).n == 0 and ImageTally.objects.get(image=imgs[5]).color_yes == 1
    assert ImageTally.objects.get(image=imgs[1]).n_disagree == 1
    assert ImageTally.objects.get(image=imgs[2]).n == 0
    assert not ImageTally.objects.filter(image=imgs[3]).exists()


def test_the_check_finds_a_wrong_tally_and_repairs_it(db, tmp_path, annotator, other_annotator):
    imgs = make_images(tmp_path / "w", 3)
    answer(imgs[0], annotator, ["pose"])
    answer(imgs[0], other_annotator, [])
    ImageTally.objects.filter(image=imgs[0]).update(n_disagree=0, pose_yes=2)  # as a broken trigger would
    ImageTally.objects.create(image=imgs[1], n=2)  # a tally for an image without answers
    check = services.review_tally_rebuild(repair=False)
    assert check.n_wrong == 2 and check.wrong == [imgs[0].pk, imgs[1].pk] and not check.repaired
    assert services.review_tally_rebuild().repaired
    _assert_tallies_match()
    assert ImageTally.objects.get(image=imgs[0]).n_disagree == 1


def test_the_tally_command_fails_on_a_wrong_tally_and_repairs_with_the_flag(db, tmp_path, annotator):
    from django.core.management import CommandError, call_command

    img = make_images(tmp_path / "c", 1)[0]
    answer(img, annotator, ["pose"])
    ImageTally.objects.filter(image=img).update(n=5)
    with pytest.raises(CommandError, match="1 of 1 tallies differ"):
        call_command("review_tally_check")
    call_command("review_tally_check", "--repair")
    call_command("review_tally_check")  # now passes


# --- the audit queue's sample ----------------------------------------------------------------------


def test_the_queue_samples_the_oldest_of_the_whole_sample_with_each_annotators_rate(
    db, tmp_path, annotator, other_annotator, reviewer
):
    """The queue's page (Python hash, chunked walk) is the head of sampled_annotations (database
    hash over everything): same answers, same order, same reasons."""
    cfg = AuditSettings.current()
    cfg.base_rate, cfg.new_annotator_rate, cfg.new_annotator_until = 0.2, 0.6, 30
    cfg.save()
    imgs = make_images(tmp_path / "s", 160)
    for i, img in enumerate(imgs):
        answer(img, annotator if i < 40 else other_annotator, ["pose"])  # other: veteran (120 answers)
    whole, rates = selectors.sampled_annotations(reviewer=reviewer)
    assert rates[annotator.pk][0] == pytest.approx(0.2)  # 40 answers: no longer new
    assert rates[other_annotator.pk][0] == pytest.approx(0.2)
    cfg.new_annotator_until = 60  # now `annotator` (40 answers) is new again
    cfg.save()
    whole, rates = selectors.sampled_annotations(reviewer=reviewer)
    assert rates[annotator.pk] == (0.6, "new annotator (40 annotations): sampled at 60%")
    expected = list(whole.order_by("created_at", "id").values_list("id", flat=True))
    assert 20 < len(expected) < 100
    for limit in (5, len(expected), 200):
        page = _sample_page(reviewer=reviewer, dataset_id=None, limit=limit, skip_images=set())
        assert [i for i, _ in page] == expected[:limit]
    page = _sample_page(reviewer=reviewer, dataset_id=None, limit=200, skip_images=set())
    why = dict(page)
    assert {why[a.pk] for a in whole if a.annotator_id == annotator.pk} == {rates[annotator.pk][1]}
    queue = selectors.audit_queue(reviewer=reviewer, limit=100)
    assert [q.annotation.pk for q in queue if q.kind == "sample"] == expected[:100]


def test_the_queue_lists_disputes_from_the_tallies(db, tmp_path, annotator, other_annotator, reviewer):
    imgs = make_images(tmp_path / "d", 4)
    answer(imgs[0], annotator, ["pose"])
    answer(imgs[0], other_annotator, ["pose", "color"])
    answer(imgs[1], annotator, ["pose"])
    answer(imgs[1], other_annotator, ["pose"])
    items = [i for i in selectors.audit_queue(reviewer=reviewer) if i.kind == "disagreement"]
    assert [i.image.pk for i in items] == [imgs[0].pk]
    assert items[0].reasons == ["2 annotators disagree on color"]


@pytest.mark.postgres
def test_two_answers_committed_at_once_on_one_image_are_both_counted(
    transactional_db, tmp_path, annotator, other_annotator
):
    """The second transaction's trigger waits for the first's tally row, then counts both answers
    (counting before the wait would see only its own and overwrite the first's count)."""
    import threading

    from django.db import transaction

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite runs one at a time)")
    img = make_images(tmp_path / "race", 1)[0]
    release = threading.Event()
    errors: list[str] = []

    def write(user, hold: bool) -> None:
        try:
            with transaction.atomic():
                Annotation.objects.create(image=img, annotator=user, pose=hold)
                if hold:
                    assert release.wait(30)
        except Exception as exc:  # named by the assertion below
            errors.append(repr(exc))
        finally:
            connection.close()

    first = threading.Thread(target=write, args=(annotator, True))
    first.start()
    deadline = time.monotonic() + 30
    with connection.cursor() as cur:  # the first holds its transaction open, its tally row written...
        while True:
            assert time.monotonic() < deadline, "the first writer never got to its commit"
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'idle in transaction'"
            )
            if cur.fetchone()[0]:
                break
            time.sleep(0.05)
    second = threading.Thread(target=write, args=(other_annotator, False))
    second.start()
    with connection.cursor() as cur:  # ...and the second waits on it
        while True:
            assert time.monotonic() < deadline, "the second writer never waited"
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cur.fetchone()[0]:
                break
            time.sleep(0.05)
    release.set()
    first.join()
    second.join()
    assert not errors, errors
    t = ImageTally.objects.get(image=img)
    assert (t.n, t.pose_yes, t.n_disagree) == (2, 1, 1)
    _assert_tallies_match()
