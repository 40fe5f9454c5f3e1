"""Demo data of the annotator: a campaign on the demo photos with overlap and a qualification set.

Called by `manage.py demo_setup` (foundation branch) after the demo images exist. Idempotent:
a second run changes nothing.
"""

from __future__ import annotations

from typing import TextIO

from annotator.models import Campaign, GoldKind
from annotator.services import campaign_create, gold_items_add
from catalog.models import Dataset

DEMO_CAMPAIGN = "Demo photos: contrast with the prototypes"
# ImageNet-X had a subset annotated several times to measure agreement; the demo uses 15 % x 3.
OVERLAP_FRACTION = 0.15
OVERLAP_COPIES = 3
QUALIFICATION_ITEMS = 4


def setup(*, stdout: TextIO) -> None:
    dataset = Dataset.objects.filter(slug="demo").first()
    if dataset is None:
        stdout.write("annotator: no `demo` dataset, no demo campaign\n")
        return
    if Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
        stdout.write("annotator: demo campaign exists already\n")
        return
    campaign = campaign_create(
        name=DEMO_CAMPAIGN,
        dataset=dataset,
        overlap_fraction=OVERLAP_FRACTION,
        overlap_copies=OVERLAP_COPIES,
        seed=7,
        gold_rate=0.05,
        qualification_threshold=0.5,
    )
    # The known-factor variants (darkened, cropped, recoloured... photos) are the gold answers:
    # a few form the qualification set, the others are mixed into the work.
    variants = list(dataset.images.filter(known_factors__isnull=False).exclude(relpath="").order_by("file_name"))
    # Spread the qualification set over different transforms rather than the first few files.
    by_answer: dict[str, list] = {}
    for img in variants:
        by_answer.setdefault(str(img.known_factors), []).append(img)
    qual: list = []
    while len(qual) < min(QUALIFICATION_ITEMS, len(variants)):
        for group in by_answer.values():
            if group and len(qual) < QUALIFICATION_ITEMS:
                qual.append(group.pop(0))
    gold = [v for v in variants if v not in qual]
    n_q = gold_items_add(campaign=campaign, images=qual, kind=GoldKind.QUALIFICATION)
    n_g = gold_items_add(campaign=campaign, images=gold, kind=GoldKind.GOLD)
    n_items = campaign.items.count()
    n_overlap = campaign.items.filter(planned__gt=1).count()
    stdout.write(
        f"annotator: campaign {campaign.name!r}: {n_items} images ({n_overlap} x{OVERLAP_COPIES} overlap), "
        f"{n_q} qualification and {n_g} gold items\n"
    )
