"""50 simulated annotators working the API at once on PostgreSQL until the campaign is done."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from annotator.models import Assignment, AssignmentStatus, Campaign, CampaignItem
from annotator.selectors import campaign_progress
from annotator.services import campaign_create
from catalog.models import Annotation
from infra.roles import Role
from tests.annotator.conftest import make_dataset

N_ANNOTATORS = 50
N_IMAGES = 60


@pytest.mark.postgres
@pytest.mark.slow
def test_fifty_annotators_finish_a_campaign_without_double_or_lost_work(transactional_db, tmp_path, django_user_model):
    if not settings.IS_POSTGRES:
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL")
    ds = make_dataset(tmp_path, n_images=N_IMAGES, n_gold=0, n_classes=4, files=False)
    # No stored files: the queue does not care, but campaign_create keeps only stored images.
    ds.images.update(relpath="x.jpg", readable=True)
    campaign = campaign_create(name="load", dataset=ds, overlap_fraction=0.2, overlap_copies=3, gold_rate=0.0)
    planned_total = campaign_progress(campaign=campaign)["planned"]
    assert planned_total == 48 + 12 * 3
    group = Group.objects.get_or_create(name=Role.ANNOTATOR)[0]
    users = []
    for i in range(N_ANNOTATORS):
        u = django_user_model.objects.create(username=f"load{i}")
        u.groups.add(group)
        users.append(u)

    accepted: list[tuple[int, int]] = []  # (user id, assignment id) answered 201
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 90

    def work(user, seed: int) -> None:
        rng = random.Random(seed)
        client = APIClient()
        client.force_authenticate(user)
        try:
            while time.monotonic() < deadline:
                resp = client.post(f"/api/annotate/campaigns/{campaign.id}/next")
                if resp.status_code == 204:
                    if campaign_progress(campaign=Campaign.objects.get(pk=campaign.pk))["remaining"] == 0:
                        return
                    time.sleep(0.05)  # others hold the last leases; one may be skipped
                    continue
                if resp.status_code != 200:
                    with lock:
                        errors.append(f"next {resp.status_code} {resp.content[:200]!r}")
                    return
                aid = resp.json()["id"]
                if rng.random() < 0.05:
                    r = client.post(f"/api/annotate/assignments/{aid}/skip", {"reason": "load test"}, format="json")
                    if r.status_code != 200:
                        with lock:
                            errors.append(f"skip {r.status_code}")
                    continue
                answer = {
                    "factors": [rng.choice(["pose", "color", "darker"])],
                    "nothing_differs": False,
                    "justification": f"by {user.username}",
                    "one_word": "w",
                }
                r = client.post(f"/api/annotate/assignments/{aid}/submit", answer, format="json")
                if r.status_code == 201:
                    with lock:
                        accepted.append((user.pk, aid))
                else:
                    with lock:
                        errors.append(f"submit {r.status_code} {r.content[:200]!r}")
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=work, args=(u, i)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    items = list(CampaignItem.objects.filter(campaign=campaign))
    assert all(i.n_done == i.planned for i in items), "some image lacks or exceeds its planned annotations"
    per_image = Counter(
        Annotation.objects.filter(image__campaign_items__campaign=campaign).values_list("image_id", flat=True)
    )
    assert {i.image_id: i.planned for i in items} == dict(per_image)
    pairs = list(Annotation.objects.values_list("annotator_id", "image_id"))
    assert len(pairs) == len(set(pairs)) == planned_total
    # No submission lost: every 201 is an annotation, linked from its assignment.
    assert len(accepted) == planned_total
    submitted = set(Assignment.objects.filter(status=AssignmentStatus.SUBMITTED).values_list("annotator_id", "pk"))
    assert submitted == set(accepted)
    assert len({u for u, _ in accepted}) > 10  # the work really was shared
    # The stored counter, written by fifty threads at once, equals a recount of the items.
    stored = Campaign.objects.get(pk=campaign.pk)
    assert stored.n_done == sum(i.n_done for i in items) == planned_total == stored.n_planned


@pytest.mark.postgres
def test_parallel_next_requests_of_one_annotator_yield_exactly_one_lease(transactional_db, tmp_path, django_user_model):
    """Ten parallel `next` of the SAME user (threads, each with its own connection) used to
    return ten different leases: the "already holds a lease" check ran outside the claim."""
    if not settings.IS_POSTGRES:
        pytest.skip("needs PostgreSQL row locks")
    ds = make_dataset(tmp_path, n_images=15, n_gold=0, n_classes=3, files=False)
    ds.images.update(relpath="x.jpg", readable=True)
    campaign = campaign_create(name="race", dataset=ds, overlap_fraction=0.0, overlap_copies=2, gold_rate=0.0)
    user = django_user_model.objects.create(username="racer")
    user.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR)[0])
    n = 10
    barrier = threading.Barrier(n)
    answers: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def hit() -> None:
        from django.db import connection as thread_connection

        client = APIClient()
        client.force_authenticate(user)
        try:
            barrier.wait(timeout=30)
            resp = client.post(f"/api/annotate/campaigns/{campaign.id}/next")
            with lock:
                answers.append((resp.status_code, resp.json()["id"] if resp.status_code == 200 else None))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=hit) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == n
    assert all(code in (200, 409) for code, _ in answers), answers
    ids = {a for code, a in answers if code == 200}
    assert len(ids) == 1, answers
    assert Assignment.objects.filter(annotator=user, status=AssignmentStatus.LEASED).count() == 1


@pytest.mark.postgres
def test_each_concurrent_revision_reports_its_own_version(transactional_db, tmp_path, django_user_model):
    """The revision response used to re-read the row after the write, so under concurrent
    revisions it could report another request's version (the stored versions were right)."""
    if not settings.IS_POSTGRES:
        pytest.skip("needs PostgreSQL row locks")
    from annotator.services import annotation_submit, assignment_next
    from catalog.models import AnnotationVersion
    from tests.annotator.conftest import answer

    ds = make_dataset(tmp_path, n_images=3, n_gold=0, n_classes=1, files=False)
    ds.images.update(relpath="x.jpg", readable=True)
    campaign = campaign_create(name="rev", dataset=ds, overlap_fraction=0.0, overlap_copies=2, gold_rate=0.0)
    user = django_user_model.objects.create(username="reviser")
    user.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR)[0])
    lease = assignment_next(campaign_id=campaign.id, user=user)
    ann = annotation_submit(assignment_id=lease.pk, user=user, answer=answer()).annotation
    n = 8
    barrier = threading.Barrier(n)
    got: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def revise(i: int) -> None:
        from django.db import connection as thread_connection

        client = APIClient()
        client.force_authenticate(user)
        try:
            barrier.wait(timeout=30)
            body = {"factors": ["pose"], "nothing_differs": False, "justification": f"take {i}", "one_word": f"w{i}"}
            resp = client.put(f"/api/annotate/annotations/{ann.pk}", body, format="json")
            with lock:
                got.append((resp.status_code, resp.json().get("version"), resp.json().get("one_word")))
        finally:
            thread_connection.close()

    # Widen the window the bug lived in: each writer pauses right after its commit (before its
    # view builds the response), so the next writer commits meanwhile.
    from django.db import transaction
    from django.db.models.signals import post_save

    def pause_after_commit(sender, instance, **kwargs):
        if instance.pk == ann.pk:
            transaction.on_commit(lambda: time.sleep(0.3))

    post_save.connect(pause_after_commit, sender=Annotation, weak=False)
    try:
        threads = [threading.Thread(target=revise, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        post_save.disconnect(pause_after_commit, sender=Annotation)
    assert [code for code, _, _ in got] == [200] * n, got
    versions = {v: w for _, v, w in got}
    assert sorted(versions) == list(range(2, n + 2)), got  # every response a different version
    stored = {v.version: v.data["one_word"] for v in AnnotationVersion.objects.filter(annotation=ann, version__gte=2)}
    assert versions == stored
