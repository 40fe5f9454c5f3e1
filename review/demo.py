"""Demo review data: annotator2 and annotator3 work the demo campaign through the annotator's
own services (qualification, gold, work), so a reviewer has something to audit and adjudicate.

Called by `manage.py demo_setup` after the annotator's demo hook. Idempotent: when annotator2
already has answers in the demo campaign nothing is done.

Both take every overlap image (multi-review), so those get two of their three planned answers
(the demo annotator gives the third) and sometimes disagree; each answers a few single images
and skips the rest with a reason, so the demo annotator still finds work. Answers follow the
images' known factors (variants) or a fixed pattern (photos) with per-annotator noise, and a few
justifications deliberately contradict the ticks, so the queue shows consistency flags.
"""

from __future__ import annotations

import random
from typing import TextIO

import numpy as np
from django.contrib.auth import get_user_model

from catalog.factors import FACTOR_KEYS, FACTORS_BY_KEY
from catalog.models import Annotation
from review import services
from review.models import AuditSettings, ConsistencyFlag

SINGLES_EACH = 8
# Answers for the photos without known factors, chosen by image id (stable between runs).
PATTERNS = (
    ["pose"],
    ["pose", "background"],
    ["multiple_objects"],
    ["smaller", "background"],
    ["larger"],
    ["color"],
    ["pose", "partial_view"],
)
# Chance of flipping each factor (annotator3 is sloppier) and typical seconds per item.
NOISE = (0.02, 0.06)
SECONDS = (9.0, 26.0)


def _text(factors: list[str]) -> str:
    if not factors:
        return "Nothing differs from the prototypes."
    return "Compared with the prototypes: " + "; ".join(FACTORS_BY_KEY[k].wording for k in factors) + "."


def _work_answer(ui: int, image, overlap: bool, n_overlap_done: int) -> tuple[list[str], str]:
    base = set(image.known_factors or PATTERNS[image.pk % len(PATTERNS)])
    flip = np.random.default_rng(image.pk * 10 + ui).random(len(FACTOR_KEYS)) < NOISE[ui]
    factors = [k for k, f in zip(FACTOR_KEYS, flip, strict=True) if (k in base) != bool(f)]
    text = _text(factors)
    if ui == 1 and overlap and n_overlap_done < 2:
        # Ticks darker while the text says brighter: a contradiction flag and a disagreement.
        factors = sorted({*factors, "darker"} - {"brighter"}, key=FACTOR_KEYS.index)
        text = "The whole scene is much brighter than the prototypes."
    elif ui == 0 and not overlap and image.pk % 3 == 0 and "partial_view" not in factors:
        text += " The object is cropped at the frame edge."  # points at an unticked factor
    return factors, text


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
        singles = overlaps = 0
        for _ in range(500):  # bounded: qualification + gold + every campaign item at most
            a = assignment_next(campaign_id=campaign.pk, user=user, rng=rng)
            if a is None:
                break
            seconds = SECONDS[ui] * (0.7 + 0.6 * rng.random())
            if a.kind != AssignmentKind.WORK:
                factors = list(a.gold_item.factors)
                if ui == 1 and "background" not in factors:
                    factors.append("background")  # over-ticks on gold: qualifies, but a lower gold score
                text = _text(factors)
            else:
                overlap = a.item.planned > 1
                if not overlap and singles >= SINGLES_EACH:
                    assignment_skip(assignment_id=a.pk, user=user, reason="demo: left for the demo annotator")
                    continue
                factors, text = _work_answer(ui, a.image, overlap, overlaps)
                overlaps += overlap
                singles += not overlap
            answer = answer_clean(
                factors=factors,
                nothing_differs=not factors,
                justification=text,
                one_word=factors[0] if factors else "same",
                time_on_task_ms=int(seconds * 1000),
                # The demo's annotators name their first factor as the main one (the campaign asks).
                main_factor=factors[0] if factors and a.kind == AssignmentKind.WORK else "",
            )
            result = annotation_submit(assignment_id=a.pk, user=user, answer=answer)
            if result.annotation is not None:
                made.append(result.annotation.pk)
    services.consistency_check(annotation_ids=made)
    services.adjudication_auto_accept()
    # Counted from the database: with eager tasks (no broker) the after-submit task has already
    # flagged some of these.
    flags = ConsistencyFlag.objects.filter(annotation_id__in=made).count()
    multi = Annotation.objects.filter(pk__in=made, image__campaign_items__planned__gt=1).count() // 2
    stdout.write(
        f"review: {len(made)} demo answers by annotator2/annotator3 ({multi} overlap images with two "
        f"answers each), {flags} consistency flags\n"
    )
