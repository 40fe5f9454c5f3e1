"""The queue: handing out leases (qualification, gold, work), the live-lease rule, skipping.

Where locks matter we check, then do (zulip's pattern): the public function checks permission
and takes the row lock; helpers that assume the lock say so in their docstring.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotator.models import (
    AnnotatorCounter,
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldItem,
    GoldKind,
    Qualification,
    QualificationStatus,
    live_lease_params,
    live_lease_q,
    live_lease_sql,
)
from annotator.services.qualification import qualification_needed
from catalog.models import Annotation, Image, ImageClass
from infra import sql
from infra.errors import Conflict, DomainError, Forbidden, NotFound
from infra.roles import Role, has_role
from prototypes.models import Prototype, PrototypeRun, RunStatus
from prototypes.selectors import prototype_ids_for_class

SKIP_REASON_MAX = 300
# How many locked-then-found-full candidates `assignment_next` tries before giving up for now.
_CLAIM_ATTEMPTS = 8


def require_annotator(user) -> None:
    if not has_role(user, Role.ANNOTATOR):
        raise Forbidden("Only annotators receive annotation work.")


def live_work_leases(now: datetime) -> QuerySet[Assignment]:
    """Work leases that still hold a slot of their item (annotator.models.live_lease_q)."""
    return Assignment.objects.filter(live_lease_q(now), kind=AssignmentKind.WORK)


def _lease(
    *,
    campaign: Campaign,
    user,
    image: Image,
    now: datetime,
    kind: str,
    item: CampaignItem | None = None,
    item_id: int | None = None,
    gold_item: GoldItem | None = None,
) -> Assignment:
    """Write the lease, with the prototypes the form will show next to the image (provenance).

    This is the one place that records them: the form and the API render what the lease
    recorded (selectors.assignment_prototypes), so a GET never writes. `image` needs its
    image_class loaded (id, name, dataset_id).
    """
    run_id, proto_ids = prototype_ids_for_class(
        dataset_id=image.image_class.dataset_id,
        image_class_id=image.image_class_id,
        k=settings.PROTOTYPES_PER_CLASS,
        exclude_image_id=image.pk,
    )
    assignment = Assignment(
        campaign=campaign,
        annotator=user,
        kind=kind,
        item_id=item.pk if item is not None else item_id,
        gold_item=gold_item,
        image=image,
        started_at=now,
        expires_at=now + timedelta(minutes=campaign.lease_minutes),
        prototype_run_id=run_id,
        prototype_image_ids=proto_ids,
    )
    sql.insert(assignment)
    # What this request recorded, for the response (no second read of the images).
    assignment._prototype_ids = proto_ids
    return assignment


def _next_gold(*, campaign: Campaign, user, kind: str, now: datetime) -> Assignment | None:
    seen = Assignment.objects.filter(campaign=campaign, annotator=user, image_id=OuterRef("image_id"))
    gold = (
        GoldItem.objects.filter(campaign=campaign, kind=kind)
        .select_related("image__image_class")
        .exclude(Exists(seen))
        .order_by("position", "id")
        .first()
    )
    if gold is None:
        return None
    return _lease(campaign=campaign, user=user, image=gold.image, now=now, kind=kind, gold_item=gold)


@lru_cache(maxsize=64)
def _candidate_sql(*, n_tried: int, skip_locked: bool, from_position: bool = False) -> str:
    """The queue's candidate query, written out once instead of built by the ORM per request.

    `next` runs it on every call, and building and compiling the equivalent queryset (two
    NOT EXISTS, a correlated lease count, ordering, locking) cost about 2 ms of CPU per request,
    more than the database needs to run it; on two shared cores that is most of the budget.
    Portable SQL (PostgreSQL and the SQLite default); the lock clause only where supported.
    Parameters: campaign, campaign, user, user, work kind, live_lease_params, run status "done",
    the start position when `from_position`, then the ids tried. An image that became a prototype of the current run after the campaign
    was made is not handed out (it would be compared with itself).

    Each NOT EXISTS must stay a probe per candidate row (an index lookup by the candidate's
    image), whatever the statistics: PostgreSQL otherwise turns them into anti-joins, and the
    generic plan of a prepared statement, made while the annotator had few rows, read all of
    the annotator's assignments and annotations into memory and compared every candidate with
    each of them (an annotator with 950 answers: 30,000 comparisons and 3.5 ms per `next`,
    growing with everything the annotator ever did). `OFFSET 0` is PostgreSQL's documented
    fence against pulling a subquery up into a join; SQLite runs NOT EXISTS as a correlated
    probe anyway (and wants LIMIT before OFFSET), so it gets none.
    """
    item, asg, ann = CampaignItem._meta.db_table, Assignment._meta.db_table, Annotation._meta.db_table
    proto, run = Prototype._meta.db_table, PrototypeRun._meta.db_table
    not_tried = f" AND ci.id NOT IN ({', '.join(['%s'] * n_tried)})" if n_tried else ""
    start = " AND ci.position >= %s" if from_position else ""
    fence = " OFFSET 0" if skip_locked else ""  # skip_locked: PostgreSQL (has_select_for_update_skip_locked)
    return (
        f"SELECT ci.id FROM {item} ci"
        " WHERE ci.campaign_id = %s AND ci.n_done < ci.planned"
        f" AND NOT EXISTS (SELECT 1 FROM {asg} s"
        f" WHERE s.campaign_id = %s AND s.annotator_id = %s AND s.image_id = ci.image_id{fence})"
        f" AND NOT EXISTS (SELECT 1 FROM {ann} a WHERE a.annotator_id = %s AND a.image_id = ci.image_id{fence})"
        f" AND ci.n_done + (SELECT COUNT(*) FROM {asg} l"
        f" WHERE l.item_id = ci.id AND l.kind = %s AND {live_lease_sql('l')}) < ci.planned"
        f" AND NOT EXISTS (SELECT 1 FROM {proto} p JOIN {run} r ON r.id = p.run_id"
        f" WHERE p.image_id = ci.image_id AND r.is_current AND r.status = %s{fence})"
        f"{start}{not_tried} ORDER BY ci.position, ci.id LIMIT 1" + (" FOR UPDATE SKIP LOCKED" if skip_locked else "")
    )


def _claim_work(*, campaign: Campaign, user, now: datetime, rng: random.Random) -> Assignment | None:
    """Claim one open item slot for `user`. Runs inside the caller's transaction.

    Candidates are items with a free slot (planned minus submitted minus live leases) whose
    image the user has never been assigned nor annotated, in queue order from a random point
    of the queue, wrapping to its front. Queue positions are a shuffle already, so the order
    means nothing by itself; starting everyone at the front made every `next` step over the
    items that the other annotators hold leases on (with 500 people at work, 500 rows and
    their lease counts per request: PostgreSQL's CPU per request grew with the number of
    people). From a random point a candidate is almost always the first row read. On PostgreSQL they
    are locked with FOR UPDATE SKIP LOCKED, so concurrent annotators skip each other's items
    instead of waiting. The candidate filter ran on the statement's snapshot, which may predate
    a lease committed just before we got the lock, so the slot count is checked again under the
    lock (check, then do) before the lease is written. Every statement is prepared (infra.sql).
    """
    connection = transaction.get_connection()
    skip_locked = connection.features.has_select_for_update_skip_locked
    live = live_lease_params(now, connection)
    base_params = [campaign.pk, campaign.pk, user.pk, user.pk, AssignmentKind.WORK.value, *live, RunStatus.DONE.value]
    start = rng.randrange(campaign.n_items) if campaign.n_items > 1 else 0
    tried: list[int] = []
    for _ in range(_CLAIM_ATTEMPTS):
        row = None
        if start:
            row = sql.one(
                _candidate_sql(n_tried=len(tried), skip_locked=skip_locked, from_position=True),
                [*base_params, start, *tried],
            )
        if row is None:  # nothing from the start point on: the queue's front
            row = sql.one(_candidate_sql(n_tried=len(tried), skip_locked=skip_locked), base_params + tried)
        if row is None:
            return None
        # We hold the item's lock: re-read its counts in a new statement (fresh snapshot), with
        # the image and class that the lease and the form need.
        n_done, planned, leased, image_id, class_id, class_name, dataset_id = sql.one(
            _RECHECK_SQL, [AssignmentKind.WORK.value, *live, row[0]]
        )
        if n_done + leased < planned:
            image = sql.loaded(Image, id=image_id, image_class_id=class_id)
            image.image_class = sql.loaded(ImageClass, id=class_id, name=class_name, dataset_id=dataset_id)
            return _lease(campaign=campaign, user=user, image=image, now=now, kind=AssignmentKind.WORK, item_id=row[0])
        tried.append(row[0])
    return None


_RECHECK_SQL = (
    "SELECT ci.n_done, ci.planned,"
    f" (SELECT COUNT(*) FROM {Assignment._meta.db_table} l WHERE l.item_id = ci.id AND l.kind = %s"
    f" AND {live_lease_sql('l')}), i.id, c.id, c.name, c.dataset_id"
    f" FROM {CampaignItem._meta.db_table} ci JOIN {Image._meta.db_table} i ON i.id = ci.image_id"
    f" JOIN {ImageClass._meta.db_table} c ON c.id = i.image_class_id WHERE ci.id = %s"
)


def assignment_next(
    *, campaign_id: int, user, now: datetime | None = None, rng: random.Random | None = None
) -> Assignment | None:
    """The user's next assignment in a campaign, or None when nothing is left for them.

    Order: an unexpired lease the user already holds (reloading the page must not burn an
    image); the qualification set until it is passed; a gold item at the campaign's gold rate;
    then an item that still needs an annotation and that the user has never seen.
    """
    require_annotator(user)
    now = now or timezone.now()
    rng = rng or random.Random()
    if not 0 < campaign_id < 2**63:  # no such id (PostgreSQL would refuse the number itself)
        raise NotFound("No such campaign.")
    connection = transaction.get_connection()
    try:
        with transaction.atomic():
            # Serialise this user's claims (check, then do): without the lock, parallel
            # requests of one user all saw "no lease held" and each claimed an item (ten
            # requests, ten leases). The user row is the lock: the second request waits here
            # until the first commits, then finds the first one's lease below and returns it.
            # SQLite takes its write lock at BEGIN IMMEDIATE, which serialises the same way.
            if connection.features.has_select_for_update:
                sql.one(_lock_user_sql(), [user.pk])
            return _next_locked(campaign_id=campaign_id, user=user, now=now, rng=rng)
    except IntegrityError:
        # Only a concurrent request of the same user can collide on (campaign, image, user);
        # the transaction was rolled back whole, nothing was leased.
        raise Conflict("Another request of yours claimed work at the same moment; ask again.")


@lru_cache(maxsize=1)
def _lock_user_sql() -> str:
    meta = get_user_model()._meta
    return f"SELECT {meta.pk.column} FROM {meta.db_table} WHERE {meta.pk.column} = %s FOR UPDATE"


_CAMPAIGN_FIELDS = [f.attname for f in Campaign._meta.concrete_fields]
_NEXT_SQL = (
    f"SELECT {', '.join('c.' + f.column for f in Campaign._meta.concrete_fields)},"
    f" EXISTS (SELECT 1 FROM {GoldItem._meta.db_table} g WHERE g.campaign_id = c.id AND g.kind = %s),"
    f" (SELECT q.status FROM {Qualification._meta.db_table} q WHERE q.campaign_id = c.id AND q.annotator_id = %s),"
    f" (SELECT a.id FROM {Assignment._meta.db_table} a WHERE a.campaign_id = c.id AND a.annotator_id = %s"
    # Ordered by expiry, not id: a prepared statement's generic plan would otherwise walk the
    # primary key of every lease in id order to find the user's (all of them when none is held).
    f" AND {live_lease_sql('a')} ORDER BY a.expires_at, a.id LIMIT 1),"
    # The user's own submitted work (the form's counter; selectors.annotator_progress).
    f" COALESCE((SELECT d.n_done FROM {AnnotatorCounter._meta.db_table} d"
    " WHERE d.annotator_id = %s AND d.campaign_id = c.id), 0)"
    f" FROM {Campaign._meta.db_table} c WHERE c.id = %s"
)


def _next_locked(*, campaign_id: int, user, now: datetime, rng: random.Random) -> Assignment | None:
    """assignment_next's work; the caller holds the user's row lock (inside its transaction).

    One prepared statement reads the campaign, whether it has a qualification set, the user's
    qualification status, the lease the user already holds and the user's progress.
    """
    connection = transaction.get_connection()
    row = sql.one(
        _NEXT_SQL,
        [GoldKind.QUALIFICATION.value, user.pk, user.pk, *live_lease_params(now, connection), user.pk, campaign_id],
    )
    if row is None:
        raise NotFound("No such campaign.")
    n = len(_CAMPAIGN_FIELDS)
    campaign = sql.loaded_row(Campaign, row[:n])
    has_qualification, qualification_status, held_id, done = row[n:]
    campaign._annotator_done, campaign._annotator_done_user = done, user.pk
    if campaign.status != CampaignStatus.ACTIVE:
        raise Conflict(f"Campaign {campaign.name!r} is {campaign.status}: it hands out no work now.")
    if held_id is not None:
        held = Assignment.objects.select_related("image__image_class", "gold_item").get(pk=held_id)
        held.campaign = campaign
        return held
    if (
        has_qualification
        and qualification_status != QualificationStatus.PASSED
        and qualification_needed(campaign=campaign, user=user) is not None
    ):
        return _next_gold(campaign=campaign, user=user, kind=GoldKind.QUALIFICATION, now=now)
    if campaign.gold_rate > 0 and rng.random() < campaign.gold_rate:
        gold = _next_gold(campaign=campaign, user=user, kind=GoldKind.GOLD, now=now)
        if gold is not None:
            return gold
    return _claim_work(campaign=campaign, user=user, now=now, rng=rng)


def lock_own_assignment(*, assignment_id: int, user) -> Assignment:
    """Lock the user's assignment row. Callers that also need the campaign item lock it next:
    the order is always assignment, then item; the queue locks only items and never waits
    (SKIP LOCKED), so no cycle can form.

    One prepared statement; the campaign comes with the columns submit needs (its other
    columns load on first access).
    """
    if not 0 < assignment_id < 2**63:
        raise NotFound("No such assignment.")
    connection = transaction.get_connection()
    row = sql.one(_lock_assignment_sql(connection.features.has_select_for_update_of), [assignment_id, user.pk])
    if row is None:
        raise NotFound("No such assignment.")
    n = len(_ASSIGNMENT_FIELDS)
    assignment = sql.loaded_row(Assignment, row[:n])
    assignment.campaign = sql.loaded(Campaign, id=assignment.campaign_id, ask_main_factor=row[n])
    return assignment


_ASSIGNMENT_FIELDS = [f.attname for f in Assignment._meta.concrete_fields]


@lru_cache(maxsize=2)
def _lock_assignment_sql(lock_of: bool) -> str:
    cols = ", ".join("a." + f.column for f in Assignment._meta.concrete_fields)
    return (
        f"SELECT {cols}, c.ask_main_factor FROM {Assignment._meta.db_table} a"
        f" JOIN {Campaign._meta.db_table} c ON c.id = a.campaign_id WHERE a.id = %s AND a.annotator_id = %s"
        + (" FOR UPDATE OF a" if lock_of else "")
    )


def assignment_skip(*, assignment_id: int, user, reason: str, now: datetime | None = None) -> Assignment:
    """Give an image back with a reason; the user never receives it again, its slot returns to the queue."""
    require_annotator(user)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why you skip this image.", field="reason")
    if len(reason) > SKIP_REASON_MAX:
        raise DomainError(f"The reason is limited to {SKIP_REASON_MAX} characters.", field="reason")
    with transaction.atomic():
        assignment = lock_own_assignment(assignment_id=assignment_id, user=user)
        if assignment.status != AssignmentStatus.LEASED:
            raise Conflict(f"This assignment is {assignment.status} already; it cannot be skipped.")
        if assignment.kind == AssignmentKind.QUALIFICATION:
            # The request is well formed; the assignment's kind forbids it: a conflict, not bad input.
            raise Conflict("Qualification images cannot be skipped.", field="reason", code="not_skippable")
        assignment.status = AssignmentStatus.SKIPPED
        assignment.skip_reason = reason
        assignment.save(update_fields=["status", "skip_reason"])
    return assignment
