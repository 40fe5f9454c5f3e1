"""Reads for the annotation queue, the form and the quality scores."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Avg, QuerySet

from annotator.models import (
    AnnotatorCounter,
    Assignment,
    AssignmentKind,
    Campaign,
    CampaignStatus,
    GoldKind,
    GoldResponse,
)
from catalog.models import Annotation, Image
from infra import sql


def gold_accuracy_by_annotator(*, user_ids: list[int] | None = None) -> dict[int, float | None]:
    """Mean per-item F1 of each annotator's gold and qualification answers (None = no gold answered).

    Per-item F1 over the 16 factors, with an empty answer to an empty known answer scoring 1.0
    (plain accuracy over 16 booleans would be inflated by the many unticked factors). Computed
    in one query. With `user_ids`, every listed id is a key (None when the user answered no gold).
    """
    qs = GoldResponse.objects.all()
    if user_ids is not None:
        qs = qs.filter(annotator_id__in=list(user_ids))
    scores = {row["annotator_id"]: row["acc"] for row in qs.values("annotator_id").annotate(acc=Avg("f1")).order_by()}
    if user_ids is None:
        return {uid: float(v) if v is not None else None for uid, v in scores.items()}
    return {uid: (float(scores[uid]) if scores.get(uid) is not None else None) for uid in user_ids}


def active_campaigns() -> QuerySet[Campaign]:
    return Campaign.objects.filter(status=CampaignStatus.ACTIVE).select_related("dataset").order_by("id")


def campaign_progress(*, campaign: Campaign) -> dict[str, int]:
    """Planned and submitted annotation counts of a campaign: its stored counters, no query.

    The counters are as fresh as the `campaign` instance (load it in the same request).
    """
    planned, done = campaign.n_planned, campaign.n_done
    return {
        "planned": planned,
        "done": done,
        "remaining": planned - done,
        "items": campaign.n_items,
        "overlap_items": campaign.n_overlap_items,
    }


def annotator_progress(*, campaign: Campaign, user) -> dict[str, int]:
    """What the form's counter shows: the annotator's own submitted work (its stored counter) and
    the campaign's remaining planned annotations (its stored counters, as fresh as `campaign`).

    A prepared statement (infra.sql): it runs on every `next` and every form render. The queue's
    `next` reads the same count in its first statement and leaves it on the campaign
    (`_annotator_done`, for this user), which is used instead.
    """
    mine = getattr(campaign, "_annotator_done", None)
    if mine is None or getattr(campaign, "_annotator_done_user", None) != user.pk:
        (mine,) = sql.one(ANNOTATOR_DONE_SQL, [user.pk, campaign.pk])
    return {"done": int(mine), "remaining": campaign.n_planned - campaign.n_done, "planned": campaign.n_planned}


# The annotator's submitted work in a campaign: its stored counter (AnnotatorCounter).
ANNOTATOR_DONE_SQL = (
    f"SELECT COALESCE((SELECT n_done FROM {AnnotatorCounter._meta.db_table}"
    " WHERE annotator_id = %s AND campaign_id = %s), 0)"
)


def qualification_answered(*, campaign: Campaign, user) -> int:
    return GoldResponse.objects.filter(
        annotator=user, gold_item__campaign=campaign, gold_item__kind=GoldKind.QUALIFICATION
    ).count()


def annotations_of(*, user) -> QuerySet[Annotation]:
    """The user's own annotations only: other people's answers are never listed to an annotator."""
    return (
        Annotation.objects.filter(annotator=user, source="user")
        .select_related("image", "image__image_class")
        .order_by("-updated_at", "-id")
    )


def annotation_of(*, user, annotation_id: int) -> Annotation | None:
    return annotations_of(user=user).filter(pk=annotation_id).first()


def asks_main_factor(assignment: Assignment) -> bool:
    """Whether this assignment's form asks for the main factor (work items of campaigns that ask;
    qualification and gold answers are scored on their factors only)."""
    return assignment.kind == AssignmentKind.WORK and assignment.campaign.ask_main_factor


def annotation_asks_main_factor(annotation: Annotation) -> bool:
    """Whether revising this answer asks for the main factor: it has one, or the campaign it was
    given in asks for one."""
    return (
        bool(annotation.main_factor)
        or Assignment.objects.filter(annotation=annotation, campaign__ask_main_factor=True).exists()
    )


def assignment_of(*, user, assignment_id: int) -> Assignment | None:
    """The user's own assignment (None for anyone else's: callers answer 404)."""
    return (
        Assignment.objects.filter(pk=assignment_id, annotator=user)
        .select_related("campaign", "image", "image__image_class", "image__dataset", "gold_item", "annotation")
        .first()
    )


def held_lease(*, campaign_id: int, user, now=None) -> Assignment | None:
    """The live lease the user holds in the campaign, if any (a read: GET pages use it)."""
    from django.utils import timezone

    from annotator.models import live_lease_q

    return (
        Assignment.objects.filter(live_lease_q(now or timezone.now()), campaign_id=campaign_id, annotator=user)
        .order_by("pk")
        .first()
    )


def image_visible_to(*, user, image: Image, lease_id: int | None = None) -> bool:
    """May this user fetch the image's pixels? Reviewers, maintainers and researchers: any image
    (they audit, or explore the curated dataset).
    An annotator: only the samples of its own assignments and the prototypes recorded on its
    assignments of that class (what its forms showed). Image ids are enumerable: without this
    any annotator could fetch every image, gold and qualification answers included.

    `lease_id`: the assignment that shows the image (the API's prototype URLs carry it): one
    primary-key read. Without it, finding the prototype among everything the annotator was
    shown of that class reads all those leases (8.7 ms for an annotator with 30,000 answers in
    20 classes). The form's URLs leave it out on purpose: the same URL for every lease lets the
    browser cache a class's prototypes (`max-age`), which saves the whole request."""
    from infra.roles import Role, has_role

    if has_role(user, Role.REVIEWER, Role.MAINTAINER, Role.RESEARCHER):
        return True
    if lease_id is not None:
        row = sql.one(_LEASE_IMAGES_SQL, [lease_id, user.pk])
        if row is not None:
            lease = sql.loaded(Assignment, id=lease_id, image_id=row[0], prototype_image_ids=row[1])
            if image.pk == lease.image_id or image.pk in (lease.prototype_image_ids or []):
                return True
    own = Assignment.objects.filter(annotator=user, image__image_class_id=image.image_class_id)
    if own.filter(image_id=image.pk).exists():
        return True
    return any(image.pk in (ids or []) for ids in own.values_list("prototype_image_ids", flat=True))


_LEASE_IMAGES_SQL = (
    f"SELECT image_id, prototype_image_ids FROM {Assignment._meta.db_table} WHERE id = %s AND annotator_id = %s"
)


def assignment_prototypes(*, assignment: Assignment) -> list[Image]:
    """The prototype images the lease recorded when it was claimed, in the order shown (a read:
    pages and the API render these, they never look the prototypes up again and write)."""
    ids = list(assignment.prototype_image_ids or [])
    if not ids:
        return []
    by_id = Image.objects.in_bulk(ids)
    return [by_id[i] for i in ids if i in by_id]


def annotators() -> QuerySet:
    return get_user_model().objects.filter(groups__name="annotator").order_by("username")


# --- Operations: a campaign's raw answers, its qualifications ------------------------------------
def annotator_pseudonym(*, campaign_id: int, user_id: int) -> str:
    """A stable pseudonym of an annotator within one campaign's export (HMAC with the secret
    key; a different campaign gives a different pseudonym, so exports cannot be joined on it)."""
    import hashlib
    import hmac

    from django.conf import settings

    msg = f"fov-export:campaign:{campaign_id}:user:{user_id}".encode()
    return "a-" + hmac.new(settings.SECRET_KEY.encode(), msg, hashlib.sha256).hexdigest()[:12]


RAW_ANSWER_FIELDS = [
    "annotator",
    "file_name",
    "split",
    "class_index",
    "class_name",
    "annotation",
    "version",
    "reason",
    "created_at",
    "factors",
    "nothing_differs",
    "justification",
    "one_word",
    "status",
    "time_on_task_ms",
]


def campaign_answer_count(*, campaign: Campaign) -> int:
    """How many answer versions an export of the campaign holds (for its progress)."""
    from catalog.models import AnnotationVersion

    return AnnotationVersion.objects.filter(
        annotation__assignments__campaign=campaign, annotation__source="user"
    ).count()


def campaign_raw_answers(*, campaign: Campaign, chunk_size: int = 2000):
    """Every version of every answer given in the campaign (work answers; gold excluded), in
    (annotation, version) order, as dicts of RAW_ANSWER_FIELDS with pseudonymised annotators.

    Streams with a server-side cursor in chunks, so 60,000 images (66,000+ rows) never sit in
    memory at once.
    """
    from catalog.models import AnnotationVersion

    rows = (
        AnnotationVersion.objects.filter(annotation__assignments__campaign=campaign, annotation__source="user")
        .order_by("annotation_id", "version")
        .values_list(
            "annotation_id",
            "version",
            "reason",
            "created_at",
            "data",
            "annotation__annotator_id",
            "annotation__time_on_task_ms",
            "annotation__image__file_name",
            "annotation__image__split",
            "annotation__image__image_class__index",
            "annotation__image__image_class__name",
        )
    )
    names: dict[int, str] = {}
    for ann_id, version, reason, created, data, uid, tot, fname, split, cidx, cname in rows.iterator(chunk_size):
        if uid not in names:
            names[uid] = annotator_pseudonym(campaign_id=campaign.pk, user_id=uid)
        data = data or {}
        yield {
            "annotator": names[uid],
            "file_name": fname,
            "split": split,
            "class_index": cidx,
            "class_name": cname,
            "annotation": ann_id,
            "version": version,
            "reason": reason,
            "created_at": created.isoformat(),
            "factors": list(data.get("factors") or []),
            "nothing_differs": bool(data.get("nothing_differs")),
            "justification": data.get("justification") or "",
            "one_word": data.get("one_word") or "",
            "status": data.get("status") or "",
            "time_on_task_ms": tot,
        }


def campaign_qualifications(*, campaign: Campaign) -> QuerySet:
    from annotator.models import Qualification

    return Qualification.objects.filter(campaign=campaign).select_related("annotator").order_by("annotator__username")
