"""Demo data of the annotator: a campaign on the demo photos with overlap and a qualification set.

Called by `manage.py demo_setup` (foundation branch) after the demo images exist. Idempotent:
a second run changes nothing.
"""

from __future__ import annotations

from typing import TextIO

from django.db import transaction

from annotator.models import Campaign, GoldKind
from annotator.services import campaign_create, gold_items_add
from catalog.models import Dataset

DEMO_CAMPAIGN = "Demo photos: contrast with the prototypes"
# ImageNet-X had a subset annotated several times to measure agreement; the demo uses 15 % x 3.
OVERLAP_FRACTION = 0.15
OVERLAP_COPIES = 3
QUALIFICATION_ITEMS = 4
GOLD_ITEMS = 6


def _spread(variants: list, n: int) -> list:
    """n variants taken round-robin over their known answers (different transforms, not the first files)."""
    by_answer: dict[str, list] = {}
    for img in variants:
        by_answer.setdefault(",".join(sorted(img.known_factors)), []).append(img)
    chosen: list = []
    while len(chosen) < min(n, len(variants)):
        for group in by_answer.values():
            if group and len(chosen) < n:
                chosen.append(group.pop(0))
    return chosen


def setup(*, stdout: TextIO) -> None:
    dataset = Dataset.objects.filter(slug="demo").first()
    if dataset is None:
        stdout.write("annotator: no `demo` dataset, no demo campaign\n")
        return
    if Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
        stdout.write("annotator: demo campaign exists already\n")
        return
    # The known-factor variants (darkened, cropped, recoloured... photos) have known answers: a
    # few form the qualification set, a few more are gold mixed into the work, and the rest are
    # annotated like any other image (their known factors let reviewers check the answers).
    variants = list(dataset.images.filter(known_factors__isnull=False).exclude(relpath="").order_by("file_name"))
    qual = _spread(variants, QUALIFICATION_ITEMS)
    gold = _spread([v for v in variants if v not in qual], GOLD_ITEMS)
    with transaction.atomic():
        campaign = campaign_create(
            name=DEMO_CAMPAIGN,
            dataset=dataset,
            overlap_fraction=OVERLAP_FRACTION,
            overlap_copies=OVERLAP_COPIES,
            seed=7,
            gold_rate=0.1,
            qualification_threshold=0.5,
            include_known_variants=True,
            exclude_image_ids=[i.pk for i in qual + gold],
        )
        n_q = gold_items_add(campaign=campaign, images=qual, kind=GoldKind.QUALIFICATION)
        n_g = gold_items_add(campaign=campaign, images=gold, kind=GoldKind.GOLD)
    n_items = campaign.items.count()
    n_overlap = campaign.items.filter(planned__gt=1).count()
    stdout.write(
        f"annotator: campaign {campaign.name!r}: {n_items} images ({n_overlap} x{OVERLAP_COPIES} overlap), "
        f"{n_q} qualification and {n_g} gold items\n"
    )
