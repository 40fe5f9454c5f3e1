"""Writes: campaigns, the queue (leases), submissions, skips, revisions, qualification and gold.

Every function is keyword-only, typed and transactional. Where locks matter we check, then do
(zulip's pattern): the public function checks permission and takes the row lock; helpers that
assume the lock say so in their docstring.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
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
    GoldResponse,
    Qualification,
    QualificationStatus,
    known_factor_list,
)
from catalog.factors import FACTOR_KEYS
from catalog.models import Annotation, AnnotationSource, AnnotationStatus, AnnotationVersion, Dataset, Image
from infra.errors import Conflict, DomainError, Forbidden, NotFound
from infra.roles import Role, has_role
from prototypes.selectors import prototypes_for_class

# Length limits, checked at the field (form, API and service say the same thing).
JUSTIFICATION_MAX = 2000
ONE_WORD_MAX = 40
ONE_WORD_MAX_WORDS = 3
SKIP_REASON_MAX = 300
# A browser tab left open for hours should not claim days of work time.
TIME_ON_TASK_MAX_MS = 6 * 60 * 60 * 1000
# How many locked-then-found-full candidates `assignment_next` tries before giving up for now.
_CLAIM_ATTEMPTS = 8


# --- Campaigns ------------------------------------------------------------------------------
def campaign_create(
    *,
    name: str,
    dataset: Dataset,
    split: str = "",
    class_ids: list[int] | None = None,
    sample_size: int | None = None,
    overlap_fraction: float = 0.1,
    overlap_copies: int = 3,
    seed: int = 0,
    lease_minutes: int | None = None,
    gold_rate: float | None = None,
    qualification_threshold: float = 0.5,
    created_by=None,
    include_known_variants: bool = False,
    exclude_image_ids: list[int] | None = None,
) -> Campaign:
    """Create a campaign and its items.

    Images with a stored file are eligible. Known-factor variants are left out unless
    `include_known_variants` (they are the usual gold answers); `exclude_image_ids` keeps the
    images chosen as gold or qualification items out of the work, so no one meets them twice.
    round(fraction x n) images, chosen at random, get `overlap_copies` independent annotations;
    all others get one. The queue order is shuffled so that overlap images are spread among
    the others.
    """
    name = (name or "").strip()
    if not name:
        raise DomainError("A campaign needs a name.", field="name")
    if Campaign.objects.filter(name=name).exists():
        raise Conflict(f"A campaign named {name!r} exists already.", field="name")
    if not 0 <= overlap_fraction <= 1:
        raise DomainError("The overlap fraction must lie between 0 and 1.", field="overlap_fraction")
    if overlap_copies < 2:
        raise DomainError("Overlap images need at least 2 annotations.", field="overlap_copies")
    if sample_size is not None and sample_size < 1:
        raise DomainError("The sample size must be at least 1.", field="sample_size")
    images = Image.objects.filter(dataset=dataset).exclude(relpath="").exclude(readable=False)
    if not include_known_variants:
        images = images.filter(known_factors__isnull=True)
    if exclude_image_ids:
        images = images.exclude(pk__in=exclude_image_ids)
    if split:
        images = images.filter(split=split)
    if class_ids:
        images = images.filter(image_class_id__in=class_ids)
    image_ids = list(images.order_by("id").values_list("id", flat=True))
    if not image_ids:
        raise DomainError("No image of this dataset matches the split and classes chosen.", field="dataset")
    rng = random.Random(seed)
    if sample_size is not None and sample_size < len(image_ids):
        image_ids = sorted(rng.sample(image_ids, sample_size))
    n_overlap = round(overlap_fraction * len(image_ids))
    overlap = set(rng.sample(image_ids, n_overlap))
    order = image_ids[:]
    rng.shuffle(order)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            dataset=dataset,
            split=split,
            sample_size=sample_size,
            seed=seed,
            overlap_fraction=overlap_fraction,
            overlap_copies=overlap_copies,
            lease_minutes=lease_minutes or settings.LEASE_MINUTES,
            gold_rate=settings.GOLD_RATE if gold_rate is None else gold_rate,
            qualification_threshold=qualification_threshold,
            created_by=created_by,
        )
        if class_ids:
            campaign.classes.set(class_ids)
        CampaignItem.objects.bulk_create(
            [
                CampaignItem(
                    campaign=campaign, image_id=iid, planned=overlap_copies if iid in overlap else 1, position=pos
                )
                for pos, iid in enumerate(order)
            ],
            batch_size=2000,
        )
    return campaign


def gold_items_add(*, campaign: Campaign, images: QuerySet[Image] | list[Image], kind: str) -> int:
    """Add images with known answers (Image.known_factors) as qualification or gold items."""
    if kind not in GoldKind.values:
        raise DomainError(f"Unknown gold kind {kind!r}.", field="kind")
    existing = set(campaign.gold_items.values_list("image_id", flat=True))
    start = campaign.gold_items.count()
    rows = []
    for img in images:
        if img.known_factors is None:
            raise DomainError(f"Image {img.file_name} has no known answer.", field="images")
        if img.id in existing:
            continue
        rows.append(
            GoldItem(
                campaign=campaign,
                image=img,
                kind=kind,
                factors=known_factor_list(img.known_factors),
                position=start + len(rows),
            )
        )
    GoldItem.objects.bulk_create(rows)
    return len(rows)


def gold_items_add_from_reviewed(*, campaign: Campaign, annotation_ids: list[int], kind: str) -> int:
    """Add images whose answer a reviewer approved (accepted, corrected or adjudicated) as gold.

    The approved factors become the known answer; images already gold in the campaign are kept.
    """
    if kind not in GoldKind.values:
        raise DomainError(f"Unknown gold kind {kind!r}.", field="kind")
    approved = list(
        Annotation.objects.filter(pk__in=annotation_ids)
        .filter(Q(status__in=[AnnotationStatus.ACCEPTED, AnnotationStatus.CORRECTED]) | Q(source="consensus"))
        .select_related("image")
    )
    if len(approved) != len(set(annotation_ids)):
        raise DomainError(
            "Only annotations that a reviewer accepted or corrected can become gold.", field="annotation_ids"
        )
    existing = set(campaign.gold_items.values_list("image_id", flat=True))
    start = campaign.gold_items.count()
    rows = []
    for ann in approved:
        if ann.image_id in existing:
            continue
        existing.add(ann.image_id)
        rows.append(
            GoldItem(
                campaign=campaign,
                image=ann.image,
                kind=kind,
                factors=ann.selected_factors,
                source=f"review:{ann.pk}",
                position=start + len(rows),
            )
        )
    GoldItem.objects.bulk_create(rows)
    return len(rows)


def campaign_set_status(*, campaign_id: int, status: str) -> Campaign:
    if status not in CampaignStatus.values:
        raise DomainError(f"Unknown status {status!r}.", field="status")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFound("No such campaign.")
        campaign.status = status
        campaign.save(update_fields=["status"])
    return campaign


# --- The queue ------------------------------------------------------------------------------
def _require_annotator(user) -> None:
    if not has_role(user, Role.ANNOTATOR):
        raise Forbidden("Only annotators receive annotation work.")


def _active_leases(now: datetime):
    """Leases that still hold a slot of their item."""
    return Assignment.objects.filter(status=AssignmentStatus.LEASED, expires_at__gt=now, kind=AssignmentKind.WORK)


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
    """Write the lease, with the prototypes the form will show next to the image (provenance)."""
    run, protos = prototypes_for_class(image.image_class, k=settings.PROTOTYPES_PER_CLASS)
    assignment = Assignment.objects.create(
        campaign=campaign,
        annotator=user,
        kind=kind,
        item=item,
        gold_item=gold_item,
        image=image,
        started_at=now,
        expires_at=now + timedelta(minutes=campaign.lease_minutes),
        prototype_run_id=getattr(run, "pk", None),
        prototype_image_ids=[p.pk for p in protos],
    )
    assignment._prototypes = (run, protos)
    return assignment


def _qualification_needed(*, campaign: Campaign, user) -> Qualification | None:
    """The user's open qualification for a campaign that has a qualification set, or None when
    the real queue is unlocked."""
    qual, _ = Qualification.objects.get_or_create(campaign=campaign, annotator=user)
    if qual.status == QualificationStatus.PASSED:
        return None
    if qual.status == QualificationStatus.FAILED:
        raise Forbidden(
            f"You did not pass this campaign's qualification (score {qual.score:.2f}, "
            f"{campaign.qualification_threshold:.2f} needed). Ask a maintainer to reset it.",
            code="not_qualified",
        )
    return qual


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
    Parameters: campaign, campaign, user, user, leased status, work kind, now, then the ids tried.
    """
    item, asg, ann = CampaignItem._meta.db_table, Assignment._meta.db_table, Annotation._meta.db_table
    not_tried = f" AND ci.id NOT IN ({', '.join(['%s'] * n_tried)})" if n_tried else ""
    return (
        f"SELECT ci.id FROM {item} ci"
        " WHERE ci.campaign_id = %s AND ci.n_done < ci.planned"
        f" AND NOT EXISTS (SELECT 1 FROM {asg} s"
        " WHERE s.campaign_id = %s AND s.annotator_id = %s AND s.image_id = ci.image_id)"
        f" AND NOT EXISTS (SELECT 1 FROM {ann} a WHERE a.annotator_id = %s AND a.image_id = ci.image_id)"
        f" AND ci.n_done + (SELECT COUNT(*) FROM {asg} l"
        " WHERE l.item_id = ci.id AND l.status = %s AND l.kind = %s AND l.expires_at > %s) < ci.planned"
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
        AssignmentStatus.LEASED.value,
        AssignmentKind.WORK.value,
        connection.ops.adapt_datetimefield_value(now),
    ]
    leased_count = (
        _active_leases(now)
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
    _require_annotator(user)
    now = now or timezone.now()
    rng = rng or random.Random()
    # One query for the campaign, whether it has a qualification set and the lease the user
    # already holds (reloading the page must not burn an image). Raw SQL for the same reason
    # as _candidate_sql: the equivalent annotated queryset cost ~1 ms of CPU to build per call.
    if not 0 < campaign_id < 2**63:  # no such id (PostgreSQL would refuse the number itself)
        raise NotFound("No such campaign.")
    connection = transaction.get_connection()
    rows = list(
        Campaign.objects.raw(
            f"SELECT c.*, EXISTS (SELECT 1 FROM {GoldItem._meta.db_table} g"
            " WHERE g.campaign_id = c.id AND g.kind = %s) AS _has_qualification,"
            f" (SELECT a.id FROM {Assignment._meta.db_table} a WHERE a.campaign_id = c.id AND a.annotator_id = %s"
            " AND a.status = %s AND a.expires_at > %s ORDER BY a.id LIMIT 1) AS _held_id"
            f" FROM {Campaign._meta.db_table} c WHERE c.id = %s",
            [
                GoldKind.QUALIFICATION.value,
                user.pk,
                AssignmentStatus.LEASED.value,
                connection.ops.adapt_datetimefield_value(now),
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
    try:
        with transaction.atomic():
            if campaign._has_qualification and _qualification_needed(campaign=campaign, user=user) is not None:
                return _next_gold(campaign=campaign, user=user, kind=GoldKind.QUALIFICATION, now=now)
            if campaign.gold_rate > 0 and rng.random() < campaign.gold_rate:
                gold = _next_gold(campaign=campaign, user=user, kind=GoldKind.GOLD, now=now)
                if gold is not None:
                    return gold
            return _claim_work(campaign=campaign, user=user, now=now)
    except IntegrityError:
        # Only a concurrent request of the same user can collide on (campaign, image, user);
        # the transaction was rolled back whole, nothing was leased.
        raise Conflict("Another request of yours claimed work at the same moment; ask again.")


def assignment_record_prototypes(*, assignment: Assignment, run_id: int | None, image_ids: list[int]) -> None:
    """Record which prototype run (and images) the form showed with this assignment (provenance)."""
    if assignment.prototype_run_id == run_id and assignment.prototype_image_ids == image_ids:
        return
    if assignment.status != AssignmentStatus.LEASED:
        return  # what was shown at submission time stays recorded
    Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.LEASED).update(
        prototype_run_id=run_id, prototype_image_ids=image_ids
    )
    assignment.prototype_run_id, assignment.prototype_image_ids = run_id, image_ids


# --- Answers ------------------------------------------------------------------------------
@dataclass
class Answer:
    """A validated answer of the form or the API."""

    factors: list[str]
    nothing_differs: bool
    justification: str
    one_word: str
    time_on_task_ms: int | None = None
    errors: dict[str, str] = field(default_factory=dict)


def answer_clean(
    *, factors: list[str], nothing_differs: bool, justification: str, one_word: str, time_on_task_ms: int | None = None
) -> Answer:
    """Validate an answer; raises DomainError naming the first bad field (details hold them all)."""
    errors: dict[str, str] = {}
    unknown = [f for f in factors if f not in FACTOR_KEYS]
    if unknown:
        errors["factors"] = f"Unknown factor(s): {', '.join(sorted(map(str, unknown)))}."
    chosen = [k for k in FACTOR_KEYS if k in set(factors)]
    if chosen and nothing_differs:
        errors["nothing_differs"] = "You ticked factors and also 'nothing differs': choose one or the other."
    elif not chosen and not nothing_differs and "factors" not in errors:
        errors["factors"] = "Tick every factor that differs, or choose 'nothing differs' explicitly."
    justification = (justification or "").strip()
    if not justification:
        errors["justification"] = "A justification is required: say what makes the sample different."
    elif len(justification) > JUSTIFICATION_MAX:
        errors["justification"] = (
            f"The justification is limited to {JUSTIFICATION_MAX} characters (yours has {len(justification)})."
        )
    one_word = (one_word or "").strip()
    if not one_word:
        errors["one_word"] = "A one-word summary is required."
    elif len(one_word) > ONE_WORD_MAX:
        errors["one_word"] = f"The summary is limited to {ONE_WORD_MAX} characters."
    elif len(one_word.split()) > ONE_WORD_MAX_WORDS:
        errors["one_word"] = f"The summary is one word (at most {ONE_WORD_MAX_WORDS})."
    if time_on_task_ms is not None and not 0 <= time_on_task_ms <= TIME_ON_TASK_MAX_MS:
        errors["time_on_task_ms"] = "The time on task is out of range."
    if errors:
        first = next(iter(errors))
        raise DomainError(errors[first], code="invalid", field=first, details=errors)
    return Answer(chosen, bool(nothing_differs), justification, one_word, time_on_task_ms)


def _flags(factors: list[str]) -> dict[str, bool]:
    chosen = set(factors)
    return {k: k in chosen for k in FACTOR_KEYS}


def _score(answer: list[str], known: list[str]) -> tuple[int, int, int, float]:
    a, k = set(answer), set(known)
    tp, fp, fn = len(a & k), len(a - k), len(k - a)
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return tp, fp, fn, f1


@dataclass
class SubmitResult:
    assignment: Assignment
    annotation: Annotation | None = None
    gold_response: GoldResponse | None = None
    qualification: Qualification | None = None
    # True when this was a retried request for a submission stored earlier (nothing written).
    replayed: bool = False


def _lock_own_assignment(*, assignment_id: int, user) -> Assignment:
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


def annotation_submit(*, assignment_id: int, user, answer: Answer, now: datetime | None = None) -> SubmitResult:
    """Save an answer for one of the user's assignments.

    A work answer becomes a catalog Annotation (version 1, kept in AnnotationVersion). A lease
    that expired is still honoured when the image still needs this annotation (the slot was not
    handed to someone else meanwhile); otherwise it is refused with a clear message and nothing
    is saved.
    """
    _require_annotator(user)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            assignment = _lock_own_assignment(assignment_id=assignment_id, user=user)
            if assignment.status == AssignmentStatus.SUBMITTED:
                # Idempotent for a retried request: the lease is the natural key, so the same
                # answer again (a client that lost our reply to a killed worker or a dropped
                # connection) gets the stored result back and nothing is written twice.
                replay = _submit_replay(assignment=assignment, answer=answer)
                if replay is not None:
                    return replay
                raise Conflict("You have already submitted this image; revise your annotation from 'My annotations'.")
            if assignment.status == AssignmentStatus.SKIPPED:
                raise Conflict("You skipped this image; it cannot be submitted any more.")
            elapsed = int((now - assignment.started_at).total_seconds() * 1000)
            time_ms = (
                answer.time_on_task_ms if answer.time_on_task_ms is not None else min(elapsed, TIME_ON_TASK_MAX_MS)
            )
            if assignment.kind == AssignmentKind.WORK:
                return _submit_work(assignment=assignment, user=user, answer=answer, now=now, time_ms=time_ms)
            return _submit_gold(assignment=assignment, user=user, answer=answer, now=now, time_ms=time_ms)
    except IntegrityError:
        raise Conflict("You have already annotated this image. Nothing was saved.", code="already_annotated")


def _same_answer(stored: dict, answer: Answer) -> bool:
    return (
        list(stored.get("factors") or []) == answer.factors
        and bool(stored.get("nothing_differs")) == answer.nothing_differs
        and (stored.get("justification") or "") == answer.justification
        and (stored.get("one_word") or "") == answer.one_word
    )


def _submit_replay(*, assignment: Assignment, answer: Answer) -> SubmitResult | None:
    """The stored result when `answer` repeats what was submitted for this (locked, submitted)
    assignment; None when it differs (a second answer is a revision, not a retry).

    Compared with the first version (what the original request wrote), so a retry that
    arrives after the annotator revised still finds its match and changes nothing.
    """
    if assignment.kind == AssignmentKind.WORK:
        if assignment.annotation_id is None:
            return None
        first = (
            AnnotationVersion.objects.filter(annotation_id=assignment.annotation_id)
            .order_by("version")
            .values_list("data", flat=True)
            .first()
        )
        if first is None or not _same_answer(first, answer):
            return None
        return SubmitResult(
            assignment=assignment, annotation=Annotation.objects.get(pk=assignment.annotation_id), replayed=True
        )
    response = GoldResponse.objects.select_related("gold_item").filter(assignment=assignment).first()
    if response is None or not _same_answer(
        {
            "factors": response.factors,
            "nothing_differs": response.nothing_differs,
            "justification": response.justification,
            "one_word": response.one_word,
        },
        answer,
    ):
        return None
    qual = (
        Qualification.objects.filter(campaign_id=assignment.campaign_id, annotator_id=assignment.annotator_id).first()
        if assignment.kind == AssignmentKind.QUALIFICATION
        else None
    )
    return SubmitResult(assignment=assignment, gold_response=response, qualification=qual, replayed=True)


def _submit_work(*, assignment: Assignment, user, answer: Answer, now: datetime, time_ms: int) -> SubmitResult:
    """Caller holds the assignment's lock; this takes the item's lock (always in that order)."""
    if assignment.expires_at <= now:
        item = CampaignItem.objects.select_for_update().get(pk=assignment.item_id)
        others = _active_leases(now).filter(item=item).exclude(pk=assignment.pk).count()
        if item.n_done + others >= item.planned:
            raise Conflict(
                "Your lease on this image expired and the image no longer needs your annotation "
                "(it was handed to another annotator). Nothing was saved; please take the next image.",
                code="lease_expired",
            )
    # The live lease holds a slot, so the item cannot be full; the guarded UPDATE takes the
    # item's row lock and counts the answer in one statement (instead of SELECT ... FOR UPDATE
    # then UPDATE), and still never exceeds the plan: no row updated means full, and raising
    # rolls the whole submission back.
    counted = CampaignItem.objects.filter(pk=assignment.item_id, n_done__lt=F("planned")).update(n_done=F("n_done") + 1)
    if not counted:
        raise Conflict("This image has all its planned annotations already. Nothing was saved.", code="item_full")
    # The unique (image, annotator) constraint backs the queue's "never twice"; a violation
    # aborts the whole transaction and annotation_submit answers a Conflict.
    annotation = Annotation.objects.create(
        image_id=assignment.image_id,
        source=AnnotationSource.USER,
        annotator=user,
        nothing_differs=answer.nothing_differs,
        justification=answer.justification,
        one_word=answer.one_word,
        status=AnnotationStatus.SUBMITTED,
        version=1,
        time_on_task_ms=time_ms,
        **_flags(answer.factors),
    )
    AnnotationVersion.objects.create(
        annotation=annotation, version=1, data=annotation.snapshot(), author=user, reason="create"
    )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = now
    assignment.annotation = annotation
    assignment.save(update_fields=["status", "submitted_at", "annotation"])
    return SubmitResult(assignment=assignment, annotation=annotation)


def _submit_gold(*, assignment: Assignment, user, answer: Answer, now: datetime, time_ms: int) -> SubmitResult:
    """Caller holds the assignment's lock."""
    gold = GoldItem.objects.get(pk=assignment.gold_item_id)
    tp, fp, fn, f1 = _score(answer.factors, gold.factors)
    response = GoldResponse.objects.create(
        assignment=assignment,
        gold_item=gold,
        annotator=user,
        factors=answer.factors,
        nothing_differs=answer.nothing_differs,
        justification=answer.justification,
        one_word=answer.one_word,
        tp=tp,
        fp=fp,
        fn=fn,
        f1=f1,
        time_on_task_ms=time_ms,
    )
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = now
    assignment.save(update_fields=["status", "submitted_at"])
    qual = None
    if assignment.kind == AssignmentKind.QUALIFICATION:
        qual = _qualification_decide(campaign=assignment.campaign, user=user, now=now)
    return SubmitResult(assignment=assignment, gold_response=response, qualification=qual)


def _qualification_decide(*, campaign: Campaign, user, now: datetime) -> Qualification:
    """Pass or fail once every qualification item is answered: micro-F1 over all answers."""
    qual = Qualification.objects.select_for_update().get(campaign=campaign, annotator=user)
    n_items = campaign.gold_items.filter(kind=GoldKind.QUALIFICATION).count()
    rows = GoldResponse.objects.filter(
        annotator=user, gold_item__campaign=campaign, gold_item__kind=GoldKind.QUALIFICATION
    )
    agg = rows.aggregate(n=Count("id"), tp=Coalesce(Sum("tp"), 0), fp=Coalesce(Sum("fp"), 0), fn=Coalesce(Sum("fn"), 0))
    tp, fp, fn = agg["tp"], agg["fp"], agg["fn"]
    qual.score = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    if agg["n"] >= n_items and qual.status == QualificationStatus.IN_PROGRESS:
        qual.status = (
            QualificationStatus.PASSED if qual.score >= campaign.qualification_threshold else QualificationStatus.FAILED
        )
        qual.decided_at = now
    qual.save(update_fields=["score", "status", "decided_at"])
    return qual


def qualification_reset(*, campaign_id: int, annotator_id: int) -> None:
    """Maintainer action: let an annotator take the qualification again.

    The qualification leases and answers are removed so that the same items can be shown again.
    """
    with transaction.atomic():
        Qualification.objects.filter(campaign_id=campaign_id, annotator_id=annotator_id).delete()
        Assignment.objects.filter(
            campaign_id=campaign_id, annotator_id=annotator_id, kind=AssignmentKind.QUALIFICATION
        ).delete()


def assignment_skip(*, assignment_id: int, user, reason: str, now: datetime | None = None) -> Assignment:
    """Give an image back with a reason; the user never receives it again, its slot returns to the queue."""
    _require_annotator(user)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why you skip this image.", field="reason")
    if len(reason) > SKIP_REASON_MAX:
        raise DomainError(f"The reason is limited to {SKIP_REASON_MAX} characters.", field="reason")
    with transaction.atomic():
        assignment = _lock_own_assignment(assignment_id=assignment_id, user=user)
        if assignment.status != AssignmentStatus.LEASED:
            raise Conflict(f"This assignment is {assignment.status} already; it cannot be skipped.")
        if assignment.kind == AssignmentKind.QUALIFICATION:
            raise DomainError("Qualification images cannot be skipped.", field="reason")
        assignment.status = AssignmentStatus.SKIPPED
        assignment.skip_reason = reason
        assignment.save(update_fields=["status", "skip_reason"])
    return assignment


# --- Revisions ----------------------------------------------------------------------------------
REVISABLE = (AnnotationStatus.SUBMITTED, AnnotationStatus.REJECTED)


def annotation_revise(*, annotation_id: int, user, answer: Answer) -> Annotation:
    """The annotator edits an own annotation until a reviewer has accepted or corrected it.

    Every version is kept (AnnotationVersion rows are appended, never updated). A rejected
    answer that is revised goes back to `submitted`, i.e. back to review.
    """
    _require_annotator(user)
    with transaction.atomic():
        annotation = (
            Annotation.objects.select_for_update().filter(pk=annotation_id, annotator=user, source="user").first()
        )
        if annotation is None:
            raise NotFound("No such annotation.")
        if annotation.status not in REVISABLE:
            raise Conflict(
                f"This annotation was {annotation.status} by a reviewer; it can no longer be revised.", code="reviewed"
            )
        for key, value in _flags(answer.factors).items():
            setattr(annotation, key, value)
        annotation.nothing_differs = answer.nothing_differs
        annotation.justification = answer.justification
        annotation.one_word = answer.one_word
        annotation.status = AnnotationStatus.SUBMITTED
        annotation.version += 1
        annotation.save()
        AnnotationVersion.objects.create(
            annotation=annotation, version=annotation.version, data=annotation.snapshot(), author=user, reason="revise"
        )
    return annotation


__all__ = [
    "Answer",
    "SubmitResult",
    "annotation_revise",
    "annotation_submit",
    "answer_clean",
    "assignment_next",
    "assignment_record_prototypes",
    "assignment_skip",
    "campaign_create",
    "campaign_set_status",
    "gold_items_add",
    "gold_items_add_from_reviewed",
    "qualification_reset",
]
