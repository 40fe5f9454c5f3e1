"""The queue: handing out leases (qualification, gold, work), the live-lease rule, skipping.

Where locks matter we check, then do (zulip's pattern): the public function checks permission
and takes the row lock; helpers that assume the lock say so in their docstring.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator.models import (
    Assignment,
    AssignmentKind,
    AssignmentStatus,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldItem,
    GoldKind,
    live_lease_params,
    live_lease_q,
    live_lease_sql,
)
from annotator.services.qualification import qualification_needed
from catalog.models import Annotation, Image
from infra.errors import Conflict, DomainError, Forbidden, NotFound
from infra.roles import Role, has_role
from prototypes.models import Prototype, PrototypeRun, RunStatus
from prototypes.selectors import prototypes_for_class

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
    gold_item: GoldItem | None = None,
) -> Assignment:
    """Write the lease, with the prototypes the form will show next to the image (provenance).

    This is the one place that records them: the form and the API render what the lease
    recorded (selectors.assignment_prototypes), so a GET never writes.
    """
    run, protos = prototypes_for_class(image.image_class, k=settings.PROTOTYPES_PER_CLASS, exclude_image_id=image.pk)
    assignment = Assignment.objects.create(
        campaign=campaign,
        annotator=user,
        kind=kind,
        item=item,
        gold_item=gold_item,
        image=image,
        started_at=now,
        expires_at=now + timedelta(minutes=campaign.lease_minutes),
        prototype_run=run,
        prototype_image_ids=[p.pk for p in protos],
    )
    assignment._prototypes = (run, protos)
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


def _candidate_sql(*, n_tried: int, skip_locked: bool) -> str:
    """The queue's candidate query, written out once instead of built by the ORM per request.

    `next` runs it on every call, and building and compiling the equivalent queryset (two
    NOT EXISTS, a correlated lease count, ordering, locking) cost about 2 ms of CPU per request,
    more than the database needs to run it; on two shared cores that is most of the budget.
    Portable SQL (PostgreSQL and the SQLite default); the lock clause only where supported.
    Parameters: campaign, campaign, user, user, work kind, live_lease_params, run status "done",
    then the ids tried. An image that became a prototype of the current run after the campaign
    was made is not handed out (it would be compared with itself).
    """
    item, asg, ann = CampaignItem._meta.db_table, Assignment._meta.db_table, Annotation._meta.db_table
    proto, run = Prototype._meta.db_table, PrototypeRun._meta.db_table
    not_tried = f" AND ci.id NOT IN ({', '.join(['%s'] * n_tried)})" if n_tried else ""
    return (
        f"SELECT ci.id FROM {item} ci"
        " WHERE ci.campaign_id = %s AND ci.n_done < ci.planned"
        f" AND NOT EXISTS (SELECT 1 FROM {asg} s"
        " WHERE s.campaign_id = %s AND s.annotator_id = %s AND s.image_id = ci.image_id)"
        f" AND NOT EXISTS (SELECT 1 FROM {ann} a WHERE a.annotator_id = %s AND a.image_id = ci.image_id)"
        f" AND ci.n_done + (SELECT COUNT(*) FROM {asg} l"
        f" WHERE l.item_id = ci.id AND l.kind = %s AND {live_lease_sql('l')}) < ci.planned"
        f" AND NOT EXISTS (SELECT 1 FROM {proto} p JOIN {run} r ON r.id = p.run_id"
        " WHERE p.image_id = ci.image_id AND r.is_current AND r.status = %s)"
        f"{not_tried} ORDER BY ci.position, ci.id LIMIT 1" + (" FOR UPDATE SKIP LOCKED" if skip_locked else "")
    )


def _claim_work(*, campaign: Campaign, user, now: datetime) -> Assignment | None:
    """Claim one open item slot for `user`. Runs inside the caller's transaction.

    Candidates are items with a free slot (planned minus submitted minus live leases) whose
    image the user has never been assigned nor annotated, in queue order. On PostgreSQL they
    are locked with FOR UPDATE SKIP LOCKED, so concurrent annotators skip each other's items
    instead of waiting. The candidate filter ran on the statement's snapshot, which may predate
    a lease committed just before we got the lock, so the slot count is checked again under the
    lock (check, then do) before the lease is written.
    """
    connection = transaction.get_connection()
    skip_locked = connection.features.has_select_for_update_skip_locked
    base_params = [
        campaign.pk,
        campaign.pk,
        user.pk,
        user.pk,
        AssignmentKind.WORK.value,
        *live_lease_params(now, connection),
        RunStatus.DONE.value,
    ]
    leased_count = (
        live_work_leases(now)
        .filter(item_id=OuterRef("pk"))
        .order_by()
        .values("item_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    tried: list[int] = []
    for _ in range(_CLAIM_ATTEMPTS):
        with connection.cursor() as cursor:
            cursor.execute(_candidate_sql(n_tried=len(tried), skip_locked=skip_locked), base_params + tried)
            row = cursor.fetchone()
        if row is None:
            return None
        # We hold the item's lock: re-read its counts in a new statement (fresh snapshot), with
        # the image and class that the lease and the form need.
        item = (
            CampaignItem.objects.select_related("image__image_class")
            .annotate(_leased=Coalesce(Subquery(leased_count, output_field=IntegerField()), Value(0)))
            .get(pk=row[0])
        )
        if item.n_done + item._leased < item.planned:
            return _lease(campaign=campaign, user=user, image=item.image, now=now, kind=AssignmentKind.WORK, item=item)
        tried.append(item.pk)
    return None


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
    # One query for the campaign, whether it has a qualification set and the lease the user
    # already holds (reloading the page must not burn an image). Raw SQL for the same reason
    # as _candidate_sql: the equivalent annotated queryset cost ~1 ms of CPU to build per call.
    if not 0 < campaign_id < 2**63:  # no such id (PostgreSQL would refuse the number itself)
        raise NotFound("No such campaign.")
    try:
        with transaction.atomic():
            # Serialise this user's claims (check, then do): without the lock, parallel
            # requests of one user all saw "no lease held" and each claimed an item (ten
            # requests, ten leases). The user row is the lock: the second request waits here
            # until the first commits, then finds the first one's lease below and returns it.
            # SQLite takes its write lock at BEGIN IMMEDIATE, which serialises the same way.
            list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
            return _next_locked(campaign_id=campaign_id, user=user, now=now, rng=rng)
    except IntegrityError:
        # Only a concurrent request of the same user can collide on (campaign, image, user);
        # the transaction was rolled back whole, nothing was leased.
        raise Conflict("Another request of yours claimed work at the same moment; ask again.")


def _next_locked(*, campaign_id: int, user, now: datetime, rng: random.Random) -> Assignment | None:
    """assignment_next's work; the caller holds the user's row lock (inside its transaction)."""
    connection = transaction.get_connection()
    rows = list(
        Campaign.objects.raw(
            f"SELECT c.*, EXISTS (SELECT 1 FROM {GoldItem._meta.db_table} g"
            " WHERE g.campaign_id = c.id AND g.kind = %s) AS _has_qualification,"
            f" (SELECT a.id FROM {Assignment._meta.db_table} a WHERE a.campaign_id = c.id AND a.annotator_id = %s"
            f" AND {live_lease_sql('a')} ORDER BY a.id LIMIT 1) AS _held_id"
            f" FROM {Campaign._meta.db_table} c WHERE c.id = %s",
            [
                GoldKind.QUALIFICATION.value,
                user.pk,
                *live_lease_params(now, connection),
                campaign_id,
            ],
        )
    )
    campaign = rows[0] if rows else None
    if campaign is None:
        raise NotFound("No such campaign.")
    if campaign.status != CampaignStatus.ACTIVE:
        raise Conflict(f"Campaign {campaign.name!r} is {campaign.status}: it hands out no work now.")
    if campaign._held_id is not None:
        held = Assignment.objects.select_related("image__image_class", "gold_item").get(pk=campaign._held_id)
        held.campaign = campaign
        return held
    if campaign._has_qualification and qualification_needed(campaign=campaign, user=user) is not None:
        return _next_gold(campaign=campaign, user=user, kind=GoldKind.QUALIFICATION, now=now)
    if campaign.gold_rate > 0 and rng.random() < campaign.gold_rate:
        gold = _next_gold(campaign=campaign, user=user, kind=GoldKind.GOLD, now=now)
        if gold is not None:
            return gold
    return _claim_work(campaign=campaign, user=user, now=now)


def lock_own_assignment(*, assignment_id: int, user) -> Assignment:
    """Lock the user's assignment row. Callers that also need the campaign item lock it next:
    the order is always assignment, then item; the queue locks only items and never waits
    (SKIP LOCKED), so no cycle can form."""
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk=assignment_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


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
