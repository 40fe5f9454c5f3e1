"""A 60,000-image campaign costs what a 3,000-image one does (issue 14).

At 3,000 and 60,000 images, empty and half annotated: the queries next, submit, the form, the
review queue and the quality dashboard make are the same in number, and PostgreSQL's plans
read the partial open-items index, the per-annotator indexes and the review tallies' indexes;
no sequential scan of items, leases, annotations or tallies. The campaign's
stored counters equal a recount after concurrent submits, skips, lease expiry and revisions.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotator import selectors
from annotator.models import AnnotatorCounter, Assignment, AssignmentKind, Campaign, CampaignItem, GoldKind
from annotator.selectors import ANNOTATOR_DONE_SQL
from annotator.services import (
    annotation_revise,
    annotation_submit,
    assignment_next,
    assignment_skip,
    campaign_counters_recount,
    campaign_create,
)
from annotator.services.leases import (
    _NEXT_SQL,
    _RECHECK_SQL,
    _candidate_sql,
    _lock_assignment_sql,
    live_lease_params,
)
from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationVersion, Dataset, Image, ImageClass
from infra.bulkcopy import bulk_insert
from infra.roles import Role
from prototypes.models import RunStatus
from prototypes.selectors import _STAND_IN_IDS_SQL
from review.models import AuditSettings
from tests.annotator.conftest import answer
from tests.conftest import client_for

ANSWER = {"factors": ["pose"], "nothing_differs": False, "justification": "turned", "one_word": "pose"}
pytestmark = pytest.mark.postgres


def _big_campaign(n_images: int, slug: str) -> Campaign:
    ds = Dataset.objects.create(slug=slug, name=slug)
    classes = bulk_insert(ImageClass, [ImageClass(dataset=ds, index=i, name=f"c{i}") for i in range(100)])
    bulk_insert(
        Image,
        [
            Image(
                dataset=ds,
                split="val",
                image_class=classes[i % 100],
                file_name=f"{slug}_{i:06d}.jpg",
                relpath=f"{slug}_{i:06d}.jpg",
                readable=True,
            )
            for i in range(n_images)
        ],
    )
    return campaign_create(name=slug, dataset=ds, overlap_fraction=0.1, overlap_copies=3, gold_rate=0.0)


def _fill_half(campaign: Campaign, django_user_model) -> None:
    """The first half of the queue fully annotated by three filler annotators, in SQL (seconds,
    where the services would take minutes), as the services would have written it."""
    fillers = [django_user_model.objects.create(username=f"fill{campaign.pk}_{k}") for k in range(3)]
    cut = campaign.n_items // 2
    item_t, asg_t = CampaignItem._meta.db_table, Assignment._meta.db_table
    ann_t, ver_t = Annotation._meta.db_table, AnnotationVersion._meta.db_table
    flags = ", ".join(FACTOR_KEYS)
    with connection.cursor() as cur:
        for k, f in enumerate(fillers):
            # The third copy (overlap items) also ticks background: every overlap image is disputed.
            ticked = {"pose", "background"} if k == 2 else {"pose"}
            values = ", ".join("true" if key in ticked else "false" for key in FACTOR_KEYS)
            where = "ci.campaign_id = %s AND ci.position < %s AND ci.planned > %s"
            cur.execute(
                f"INSERT INTO {ann_t} (image_id, source, annotator_id, source_release, nothing_differs, justification,"
                f" one_word, main_factor, status, version, time_on_task_ms, reference_top_factor, created_at,"
                f" updated_at, {flags})"
                f" SELECT ci.image_id, 'user', %s, '', false, 'turned', 'pose', 'pose', 'submitted', 1, 1000, '', now(),"
                " now(),"
                f" {values} FROM {item_t} ci WHERE {where}",
                [f.pk, campaign.pk, cut, k],
            )
            cur.execute(
                f"INSERT INTO {ver_t} (annotation_id, version, data, author_id, reason, created_at)"
                f" SELECT a.id, 1, %s::jsonb, a.annotator_id, 'create', now() FROM {ann_t} a WHERE a.annotator_id = %s",
                [json.dumps({**ANSWER, "status": "submitted"}), f.pk],
            )
            cur.execute(
                f"INSERT INTO {asg_t} (campaign_id, annotator_id, kind, item_id, image_id, status, started_at,"
                " expires_at, submitted_at, skip_reason, prototype_image_ids, annotation_id)"
                f" SELECT ci.campaign_id, %s, 'work', ci.id, ci.image_id, 'submitted', now(), now(), now(), '', '[]',"
                f" a.id FROM {item_t} ci JOIN {ann_t} a ON a.image_id = ci.image_id AND a.annotator_id = %s"
                f" WHERE {where}",
                [f.pk, f.pk, campaign.pk, cut, k],
            )
        cur.execute(
            f"UPDATE {item_t} SET n_done = planned WHERE campaign_id = %s AND position < %s", [campaign.pk, cut]
        )
    campaign_counters_recount(campaign_id=campaign.pk)


def _plan_nodes(sql: str, params: list) -> list[dict]:
    """The plan PostgreSQL runs the statement with: infra.sql prepares the hot statements and the
    connection forces generic plans (config/settings.py), so that is the plan of a prepared
    statement, made without the parameters' values, and used for every execution."""
    n = sql.count("%s")
    numbered = sql
    for i in range(1, n + 1):
        numbered = numbered.replace("%s", f"${i}", 1)
    with connection.cursor() as cur:
        cur.execute("SHOW plan_cache_mode")
        assert cur.fetchone()[0] == "force_generic_plan"
        cur.execute("PREPARE fov_plan AS " + numbered)
        try:
            cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE fov_plan({', '.join(['%s'] * n)})", params)
            plan = cur.fetchone()[0]
        finally:
            cur.execute("DEALLOCATE fov_plan")
    return _flatten(plan)


def _flatten(plan) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) plan (text or parsed)."""
    if isinstance(plan, str):
        plan = json.loads(plan)
    out, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.get("Plans", []))
    return out


def _rows(table: str) -> float:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cur.fetchone()[0]


def _assert_indexed(nodes: list[dict], *, uses: set[str]) -> None:
    """The plan reads one of the indexes named (by prefix), and scans no table sequentially
    but a near-empty one (the planner rightly reads a table of a few rows whole: that cost
    does not grow)."""
    seq = [n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"]
    big = [t for t in seq if t == CampaignItem._meta.db_table or _rows(t) >= 1000]
    assert not big, (
        f"sequential scan of {big}: {[(n['Node Type'], n.get('Relation Name'), n.get('Index Name'), n.get('Filter'), n.get('Plan Rows')) for n in nodes]}"
    )
    used = {n.get("Index Name") for n in nodes if "Index Name" in n}
    assert not uses or any(u.startswith(p) for u in used for p in uses), f"plan reads {used}, expected {uses}"


def _assert_probes_per_candidate(nodes: list[dict]) -> None:
    """The candidate's checks (leased to this annotator before, annotated by them, a prototype)
    are index probes by the candidate's image: never the annotator's whole history read into
    memory and compared with each candidate (a generic plan made while the annotator had few
    rows did that: 30,000 comparisons per `next` for an annotator with 950 answers)."""
    kept = [n["Node Type"] for n in nodes if n["Node Type"] in ("Materialize", "Hash", "Sort", "Incremental Sort")]
    assert not kept, f"the candidate plan materialises, hashes or sorts: {kept}"
    tables = {Assignment._meta.db_table: "s", Annotation._meta.db_table: "a"}
    for n in nodes:
        table = n.get("Relation Name")
        if table in tables and tables[table] == n.get("Alias") and _rows(table) >= 1000:  # as _assert_indexed
            assert "image_id" in n.get("Index Cond", ""), f"{n['Alias']} read without the candidate's image: {n}"


def _costs(campaign: Campaign, user) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """Queries per request for next, the form, submit; and the plans of the queue's candidate
    query and of the progress count, for `user` in `campaign`."""
    api = APIClient()
    api.force_authenticate(user)
    counts = {}
    with CaptureQueriesContext(connection) as q:
        r = api.post(f"/api/annotate/campaigns/{campaign.id}/next")
    assert r.status_code == 200, r.content
    counts["next"] = len(q)
    aid = r.json()["id"]
    with CaptureQueriesContext(connection) as q:
        assert client_for(user).get(reverse("annotator:assignment", args=[aid])).status_code == 200
    counts["form"] = len(q)
    with CaptureQueriesContext(connection) as q:
        assert api.post(f"/api/annotate/assignments/{aid}/submit", ANSWER, format="json").status_code == 201
    counts["submit"] = len(q)
    now = timezone.now()
    params = [
        campaign.pk,
        campaign.pk,
        user.pk,
        user.pk,
        AssignmentKind.WORK.value,
        *live_lease_params(now, connection),
        RunStatus.DONE.value,  # in _claim_work's order (its docstring lists the parameters)
    ]
    live = live_lease_params(now, connection)
    item_id = CampaignItem.objects.filter(campaign=campaign).values_list("pk", flat=True).first()
    image = Image.objects.get(pk=Assignment.objects.get(pk=aid).image_id)
    plans = {
        "candidate": _plan_nodes(_candidate_sql(n_tried=0, skip_locked=True), params),
        # next starts from a random queue position (then wraps to the front)
        "candidate_from": _plan_nodes(
            _candidate_sql(n_tried=0, skip_locked=True, from_position=True), [*params, campaign.n_items // 2]
        ),
        "progress": _plan_nodes(ANNOTATOR_DONE_SQL, [user.pk, campaign.pk]),
        # next's first statement (campaign, qualification, held lease, the user's progress)
        "next": _plan_nodes(_NEXT_SQL, [GoldKind.QUALIFICATION.value, user.pk, user.pk, *live, user.pk, campaign.pk]),
        "recheck": _plan_nodes(_RECHECK_SQL, [AssignmentKind.WORK.value, *live, item_id]),
        "lock_assignment": _plan_nodes(_lock_assignment_sql(True), [aid, user.pk]),
        # no prototype run here: next records the class's first images by name as stand-ins
        "stand_in": _plan_nodes(_STAND_IN_IDS_SQL, [image.image_class_id, image.pk, 3]),
    }
    return counts, plans


def _review_costs(reviewer) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """Queries of the review queue page, of its sample walk and of the quality dashboard (its
    stored report: the worker's refresh runs first, as it would have), and the plans of the
    queue's dispute and sample reads."""
    from review import selectors as rsel
    from review import services as rsvc
    from review.selectors.queue import _sample_page, sample_walk_rows

    counts = {}
    page = client_for(reviewer)
    with CaptureQueriesContext(connection) as q:
        assert page.get(reverse("review:queue")).status_code == 200
    counts["review_queue"] = len(q)
    with CaptureQueriesContext(connection) as q:
        picked = _sample_page(reviewer=reviewer, dataset_id=None, limit=100, skip_images=set())
    counts["review_sample"] = len(q)
    counts["review_sample_n"] = len(picked)
    rsvc.quality_report_refresh(key="")
    with CaptureQueriesContext(connection) as q:
        assert page.get(reverse("review:quality")).status_code == 200
    counts["quality"] = len(q)
    own = Annotation.objects.filter(annotator=reviewer).values("image_id")
    plans = {
        "disputes": _flatten(
            rsel.multi_annotated_images(complete_only=False)
            .filter(n_disagree__gt=0)
            .exclude(image_id__in=own)[:100]
            .explain(format="json")
        ),
        "sample": _flatten(sample_walk_rows(reviewer=reviewer, dataset_id=None)[:500].explain(format="json")),
    }
    return counts, plans


@pytest.mark.slow
def test_queries_and_plans_are_the_same_at_3000_and_60000_images_empty_and_half_done(db, django_user_model):
    if not settings.IS_POSTGRES:
        pytest.skip("plans are PostgreSQL's")
    group = Group.objects.get_or_create(name=Role.ANNOTATOR)[0]
    # Its row exists in service (the first call writes it). Every answer sampled: the queue's
    # contents (and so its queries) must not depend on which ids the hash happens to pick.
    AuditSettings.objects.update_or_create(pk=1, defaults={"base_rate": 1.0, "new_annotator_rate": 1.0})
    reviewer = django_user_model.objects.create(username="scale_reviewer")
    reviewer.groups.add(Group.objects.get_or_create(name=Role.REVIEWER)[0])
    seen = {}
    for n in (3000, 60000):
        campaign = _big_campaign(n, f"s{n}")
        for fill in ("empty", "half"):
            if fill == "half":
                _fill_half(campaign, django_user_model)
            with connection.cursor() as cur:  # a database in service has statistics
                cur.execute("ANALYZE")
            user = django_user_model.objects.create(username=f"u{n}{fill}")
            user.groups.add(group)
            counts, plans = _costs(Campaign.objects.get(pk=campaign.pk), user)
            _assert_indexed(plans["candidate"], uses={"item_open_order_idx"})
            _assert_indexed(plans["candidate_from"], uses={"item_open_order_idx"})
            _assert_indexed(plans["stand_in"], uses={"image_stand_in_idx"})
            _assert_probes_per_candidate(plans["candidate"])
            _assert_probes_per_candidate(plans["candidate_from"])
            # The annotator's progress is its stored counter (a row per annotator and campaign):
            # it reads no lease, however many the annotator submitted.
            assert {n.get("Relation Name") for n in plans["progress"]} - {None} == {AnnotatorCounter._meta.db_table}
            _assert_indexed(plans["progress"], uses=set())
            # The leases table is near-empty before the fill (read whole, rightly); half done, it
            # holds 33,000 rows at 60,000 images and must be read through an index.
            for name in ("recheck", "lock_assignment"):
                _assert_indexed(plans[name], uses={"assignment_", "annotator_assignment_"} if fill == "half" else set())
            if fill == "half":
                # next's subqueries read the user's own leases through the user's index, never
                # every lease in primary-key order (a generic plan's trap: the held-lease lookup
                # once walked all 36,000 leases when the user held none).
                _assert_indexed(plans["next"], uses={"assignment_user_idx", "annotator_assignment_annotator_id"})
                used = {n.get("Index Name") for n in plans["next"] if "Index Name" in n}
                assert f"{Assignment._meta.db_table}_pkey" not in used, used
            # The review queue reads the tallies (disputes through their partial index) and walks
            # the waiting answers oldest first through theirs; the dashboard its stored report.
            review_counts, review_plans = _review_costs(reviewer)
            # (empty, both tables are near-empty and rightly read whole)
            half = fill == "half"
            _assert_indexed(review_plans["disputes"], uses={"tally_disputed_idx"} if half else set())
            _assert_indexed(review_plans["sample"], uses={"annotation_awaiting_review_idx"} if half else set())
            # (empty: the one answer _costs submitted)
            assert review_counts["review_sample_n"] == (100 if half else 1), review_counts
            counts.update(review_counts)
            # Progress comes from the campaign's stored counters: no query sums the items.
            seen[(n, fill)] = counts
        # The review queue spans datasets: the next size starts without this one's answers.
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # settle the deferred foreign-key checks first
            cur.execute("TRUNCATE catalog_annotation, review_imagetally, review_qualitysnapshot CASCADE")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
    # The annotator's requests: the same queries at every size and fill. The review pages: the
    # same at both sizes for a fill (an empty queue makes fewer than a full one).
    annotator_keys = ("next", "form", "submit")
    by_size = {k: {key: v for key, v in c.items() if key in annotator_keys} for k, c in seen.items()}
    assert len({tuple(sorted(c.items())) for c in by_size.values()}) == 1, seen
    for fill in ("empty", "half"):
        assert seen[(3000, fill)] == seen[(60000, fill)], seen
    campaign = Campaign.objects.get(name="s60000")
    assert campaign.n_done == sum(CampaignItem.objects.filter(campaign=campaign).values_list("n_done", flat=True))


def _recount(campaign: Campaign) -> dict[str, int]:
    items = CampaignItem.objects.filter(campaign=campaign)
    return {
        "n_items": items.count(),
        "n_overlap_items": items.filter(planned__gt=1).count(),
        "n_planned": sum(items.values_list("planned", flat=True)),
        "n_done": sum(items.values_list("n_done", flat=True)),
        "annotators": dict(
            Assignment.objects.filter(campaign=campaign, status="submitted", kind="work")
            .values("annotator_id")
            .annotate(n=Count("id"))
            .values_list("annotator_id", "n")
            .order_by()
        ),
    }


def _stored(campaign: Campaign) -> dict:
    c = Campaign.objects.get(pk=campaign.pk)
    out = {k: getattr(c, k) for k in ("n_items", "n_overlap_items", "n_planned", "n_done")}
    # Counters of 0 are the same as none (an annotator who only skipped has no row).
    out["annotators"] = {
        a: n for a, n in AnnotatorCounter.objects.filter(campaign=campaign).values_list("annotator_id", "n_done") if n
    }
    return out


@pytest.mark.embedded
def test_counters_equal_recounts_after_submits_skips_expiry_and_revisions(campaign, annotator, other_annotator):
    assert _stored(campaign) == _recount(campaign)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    b = assignment_next(campaign_id=campaign.id, user=annotator)
    assignment_skip(assignment_id=b.pk, user=annotator, reason="blurry")
    annotation_revise(annotation_id=ann.pk, user=annotator, answer=answer(factors=["color"]))
    annotation_submit(assignment_id=a.pk, user=annotator, answer=answer())  # a retried request
    # A lease that expired: the slot goes to someone else, the late answer is refused...
    c = assignment_next(campaign_id=campaign.id, user=annotator)
    later = timezone.now() + timedelta(minutes=campaign.lease_minutes + 1)
    d = assignment_next(campaign_id=campaign.id, user=other_annotator, now=later)
    # ... or honoured when the image still needs it; either way the counters agree.
    for asg, user in ((c, annotator), (d, other_annotator)):
        try:
            annotation_submit(assignment_id=asg.pk, user=user, answer=answer(), now=later)
        except Exception:
            pass
    assert _stored(campaign) == _recount(campaign)
    assert _stored(campaign)["n_done"] == Annotation.objects.filter(source="user").count()


@pytest.mark.slow
def test_counters_equal_recounts_after_concurrent_submits_and_skips(transactional_db, tmp_path, django_user_model):
    if not settings.IS_POSTGRES:
        pytest.skip("concurrent row locks need PostgreSQL")
    from tests.annotator.conftest import make_dataset

    ds = make_dataset(tmp_path, n_images=60, n_gold=0, n_classes=3, files=False)
    ds.images.update(relpath="x.jpg", readable=True)
    campaign = campaign_create(name="conc", dataset=ds, overlap_fraction=0.3, overlap_copies=3, gold_rate=0.0)
    group = Group.objects.get_or_create(name=Role.ANNOTATOR)[0]
    users = []
    for i in range(12):
        u = django_user_model.objects.create(username=f"c{i}")
        u.groups.add(group)
        users.append(u)
    errors: list[str] = []

    def work(user, k: int) -> None:
        try:
            for j in range(12):
                a = assignment_next(campaign_id=campaign.id, user=user)
                if a is None:
                    return
                if (j + k) % 5 == 0:
                    assignment_skip(assignment_id=a.pk, user=user, reason="skip")
                else:  # answers differ between annotators: disputed images, tallied at once
                    ticked = ["pose"] if k % 2 else ["color"]
                    annotation_submit(assignment_id=a.pk, user=user, answer=answer(factors=ticked))
        except Exception as exc:  # collected: the assertion below names it
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u, i)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [e for e in errors if "Conflict" not in e], errors
    assert _stored(campaign) == _recount(campaign)
    assert selectors.campaign_progress(campaign=Campaign.objects.get(pk=campaign.pk))["done"] == (
        Annotation.objects.filter(source="user").count()
    )
    # The review app's per-image tallies (kept by triggers) equal a recount too.
    from review import services as review_services
    from review.models import ImageTally

    assert review_services.review_tally_rebuild(repair=False).n_wrong == 0
    assert ImageTally.objects.filter(n_disagree__gt=0).exists()
