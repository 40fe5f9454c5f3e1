"""The per-image answer tallies (ImageTally): checked against a recount, and repaired."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from catalog.factors import FACTOR_KEYS
from review.models import ImageTally

_FIELDS = ("n", *(f"{k}_yes" for k in FACTOR_KEYS), "n_disagree", "has_consensus")
_EMPTY = {f: (False if f == "has_consensus" else 0) for f in _FIELDS}


@dataclass(frozen=True)
class TallyCheck:
    images: int  # images with answers
    wrong: list[int]  # images whose stored tally differs from the recount (first 100)
    n_wrong: int
    repaired: bool


@transaction.atomic
def review_tally_rebuild(*, repair: bool = True) -> TallyCheck:
    """Compare every stored tally with a recount of the answers; with `repair`, write the recount.

    The triggers keep the tallies right in normal operation; this is the check after a restore
    from a partial backup or a manual edit with the triggers disabled. Reads every answer once.
    """
    from review.selectors import tally_recount

    expected = tally_recount()
    stored = {r["image_id"]: r for r in ImageTally.objects.values("image_id", *_FIELDS)}
    wrong = []
    for image_id in sorted(expected.keys() | stored.keys()):
        want = expected.get(image_id, _EMPTY)
        have = stored.get(image_id)
        if have is None and image_id not in expected:
            continue
        if have is None or any(have[f] != want[f] for f in _FIELDS):
            wrong.append(image_id)
    if repair and wrong:
        rows = [ImageTally(image_id=i, **expected.get(i, _EMPTY)) for i in wrong]
        ImageTally.objects.bulk_create(
            rows, batch_size=1000, update_conflicts=True, unique_fields=["image"], update_fields=list(_FIELDS)
        )
    return TallyCheck(images=len(expected), wrong=wrong[:100], n_wrong=len(wrong), repaired=repair and bool(wrong))
