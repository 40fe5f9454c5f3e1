"""Demo review data: annotator2 and annotator3 work the demo campaign through the annotator's
own services (qualification, gold, work), so a reviewer has something to audit and adjudicate.

Called by `manage.py demo_setup` after the annotator's demo hook. Idempotent: when annotator2
already has answers in the demo campaign nothing is done.

Both take every overlap image (multi-review), so those get two independent answers that
sometimes disagree; each answers only a few single images and skips the rest with a reason,
so the demo annotator still finds work (the overlap images' third copies and the singles left).
Some justifications deliberately contradict the ticks, so the queue shows consistency flags.

The demo campaign has only two overlap images, too few for agreement figures. So the demo also
writes a multi-review sample outside any campaign: annotator2 and annotator3 both answer the
known-factor variants (their known factors, with per-annotator noise), written the way the
annotator app writes answers (Annotation + version 1), spread over the last ten days. The
dashboard then has ~60 overlap items; filter by the campaign to see the campaign alone.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TextIO

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotator.review import services
from annotator.review.models import AuditSettings, ConsistencyFlag
from catalog.factors import FACTOR_KEYS, FACTORS_BY_KEY
from catalog.models import Annotation, AnnotationVersion, Image

SINGLES_EACH = 4
# Synthetic answers for the base photos, chosen by image id (stable between runs).
ANSWERS = (
    ["pose"],
    ["pose", "background"],
    ["multiple_objects"],
    ["smaller", "background"],
    ["larger"],
    ["color"],
    ["pose", "partial_view"],
)


def _text(factors: list[str]) -> str:
    return "Compared with the prototypes: " + "; ".join(FACTORS_BY_KEY[k].wording for k in factors) + "."


def _work_answer(user_index: int, image_id: int, overlap: bool) -> tuple[list[str], str, str]:
    factors = list(ANSWERS[image_id % len(ANSWERS)])
    text = _text(factors)
    if user_index == 1 and overlap:
        # The second annotator sees the overlap images differently: a disagreement to adjudicate,
        # and a justification that contradicts a tick (darker ticked, text says brighter).
        factors = [*factors[:1], "darker"]
        text = "The whole scene is much brighter than the prototypes and the pose differs."
    if user_index == 0 and image_id % 3 == 0 and not overlap:
        # Points at a factor that is not ticked (partial view): a consistency flag.
        text = _text(factors) + " The animal is cropped at the frame edge."
    return factors, text, factors[0]


def setup(*, stdout: TextIO) -> None:
    from annotator.demo import DEMO_CAMPAIGN
    from annotator.models import AssignmentKind, Campaign
    from annotator.services import annotation_submit, answer_clean, assignment_next, assignment_skip

    AuditSettings.current()
    campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
    User = get_user_model()
    users = [User.objects.filter(username=n).first() for n in ("annotator2", "annotator3")]
    if campaign is None or not all(users):
        stdout.write("review: no demo campaign or demo annotators, no demo review data\n")
        return
    if Annotation.objects.filter(annotator=users[0], image__campaign_items__campaign=campaign).exists():
        stdout.write("review: demo answers exist already\n")
        return
    rng = random.Random(11)
    made: list[int] = []
    for ui, user in enumerate(users):
        singles = 0
        for _ in range(200):  # bounded: qualification + gold + every campaign item at most
            a = assignment_next(campaign_id=campaign.pk, user=user, rng=rng)
            if a is None:
                break
            seconds = (7 if ui == 0 else 24) + rng.random() * 6
            if a.kind != AssignmentKind.WORK:
                known = list(a.gold_item.factors)
                # annotator3 over-ticks on gold: still qualifies, but with a low gold accuracy,
                # so the audit samples more of their work.
                factors = known + (["background"] if ui == 1 and "background" not in known else [])
                text, word = (_text(factors) if factors else "Nothing differs."), (factors[0] if factors else "same")
            else:
                overlap = a.item.planned > 1
                if not overlap and singles >= SINGLES_EACH:
                    assignment_skip(assignment_id=a.pk, user=user, reason="demo: left for the demo annotator")
                    continue
                singles += 0 if overlap else 1
                factors, text, word = _work_answer(ui, a.image_id, overlap)
            answer = answer_clean(
                factors=factors,
                nothing_differs=not factors,
                justification=text,
                one_word=word,
                time_on_task_ms=int(seconds * 1000),
            )
            result = annotation_submit(assignment_id=a.pk, user=user, answer=answer)
            if result.annotation is not None:
                made.append(result.annotation.pk)
    made += _multi_review_sample(users)
    services.consistency_check(annotation_ids=made)
    services.adjudication_auto_accept()
    # Counted from the database: with eager tasks (no broker) the after-submit task has already
    # flagged and auto-accepted some of these.
    flags = ConsistencyFlag.objects.filter(annotation_id__in=made).count()
    settled = Annotation.objects.filter(source="consensus", image__annotations__in=made).distinct().count()
    stdout.write(
        f"review: {len(made)} demo answers by annotator2/annotator3, {flags} consistency flags, "
        f"{settled} image(s) with a consensus (full agreement)\n"
    )


# Per-annotator chance of flipping each factor of the known answer (annotator3 is sloppier),
# and their typical seconds per item.
NOISE = (0.01, 0.03)
SECONDS = (9.0, 26.0)


@transaction.atomic
def _multi_review_sample(users) -> list[int]:
    rng = np.random.default_rng(5)
    variants = list(Image.objects.filter(dataset__slug="demo", known_factors__isnull=False).order_by("file_name"))
    now = timezone.now()
    made: list[int] = []
    for i, img in enumerate(variants):
        known = set(img.known_factors or [])
        for ui, user in enumerate(users):
            flip = rng.random(len(FACTOR_KEYS)) < NOISE[ui]
            factors = [k for k, f in zip(FACTOR_KEYS, flip, strict=True) if (k in known) != bool(f)]
            when = now - dt.timedelta(days=10 * (1 - i / max(1, len(variants))), minutes=ui * 3)
            ann = Annotation.objects.create(
                image=img,
                annotator=user,
                nothing_differs=not factors,
                justification=_text(factors) if factors else "Nothing differs from the prototypes.",
                one_word=factors[0] if factors else "same",
                time_on_task_ms=int((SECONDS[ui] + rng.normal(0, SECONDS[ui] / 5)) * 1000) if i % 7 else None,
                **{k: k in factors for k in FACTOR_KEYS},
            )
            Annotation.objects.filter(pk=ann.pk).update(created_at=when)
            AnnotationVersion.objects.create(
                annotation=ann, version=1, data=ann.snapshot(), author=user, reason="create"
            )
            made.append(ann.pk)
    return made
