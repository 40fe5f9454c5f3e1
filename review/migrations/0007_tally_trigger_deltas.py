"""On PostgreSQL, the tally trigger adds the written row's change instead of recounting the image.

0005's trigger recounted the image's answers after each write. Its SELECT on catalog_annotation
is planned once per connection (generic plans are forced, config/settings.py): planned while the
table was small, it was a sequential scan, and stayed one as the table grew; filling 36,000
answers in one transaction took four minutes instead of seconds. Now the trigger reads nothing
but the tally row: one upsert that adds the row's contribution (new minus old: +1 for an
inserted live answer, -1 for a deleted one, the factors' difference for an edit) and derives
the disputed factors from the new counts. Concurrent writers stay exact: ON CONFLICT DO UPDATE
adds to the row's latest committed version under its row lock, so no count is overwritten.
A negative change never reaches the INSERT branch's CHECK (n >= 0): that branch only runs for
an image without a tally row, where the change is clamped at zero.

SQLite (one writer at a time, and a planner that always takes the image index) keeps 0005's
recount.
"""

import importlib

from django.db import migrations

KEYS = (
    "pose", "partial_view", "object_blocking", "person_blocking", "multiple_objects", "smaller", "larger",
    "brighter", "darker", "background", "color", "shape", "texture", "pattern", "style", "subcategory",
)  # fmt: skip
COUNTS = ("n", *(f"{k}_yes" for k in KEYS))


def _live(r: str) -> str:
    return f"({r}.source = 'user' AND {r}.status <> 'superseded')"


def _contribution(r: str, column: str) -> str:
    """What row `r` (NEW or OLD; NULL where the operation has none) adds to a count column."""
    cond = _live(r) if column == "n" else f"{_live(r)} AND {r}.{column.removesuffix('_yes')}"
    return f"(CASE WHEN {cond} THEN 1 ELSE 0 END)"


def _consensus(r: str) -> str:
    return f"(CASE WHEN {r}.source = 'consensus' THEN 1 ELSE 0 END)"


def _upsert(img: str) -> str:
    """Add the d_* variables to the tally of image `img`."""
    t = "review_imagetally"
    new = {c: f"{t}.{c} + d_{c}" for c in COUNTS}
    split = " + ".join(
        f"(CASE WHEN {new[f'{k}_yes']} > 0 AND {new[f'{k}_yes']} < {new['n']} THEN 1 ELSE 0 END)" for k in KEYS
    )
    return (
        f"INSERT INTO {t} (image_id, {', '.join(COUNTS)}, n_disagree, has_consensus) "
        f"VALUES ({img}, {', '.join(f'GREATEST(d_{c}, 0)' for c in COUNTS)}, 0, d_consensus > 0) "
        f"ON CONFLICT (image_id) DO UPDATE SET {', '.join(f'{c} = {new[c]}' for c in COUNTS)}, "
        f"n_disagree = {split}, "
        f"has_consensus = CASE WHEN d_consensus > 0 THEN true WHEN d_consensus < 0 THEN false "
        f"ELSE {t}.has_consensus END;"
    )


def _set(sign_new: int, sign_old: int) -> str:
    """Assign the d_* variables: sign_new x NEW's contribution + sign_old x OLD's."""

    def expr(part) -> str:
        terms = [f"{'+' if s > 0 else '-'} {part(r)}" for r, s in (("NEW", sign_new), ("OLD", sign_old)) if s]
        return "0 " + " ".join(terms)

    lines = [f"d_{c} := {expr(lambda r, c=c: _contribution(r, c))};" for c in COUNTS]
    lines.append(f"d_consensus := {expr(_consensus)};")
    return "\n        ".join(lines)


FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION review_tally_annotation() RETURNS trigger AS $$
    DECLARE
        {" ".join(f"d_{c} integer;" for c in COUNTS)} d_consensus integer;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            {_set(0, -1)}
            {_upsert("OLD.image_id")}
        ELSIF TG_OP = 'UPDATE' AND OLD.image_id <> NEW.image_id THEN
            {_set(0, -1)}
            {_upsert("OLD.image_id")}
            {_set(1, 0)}
            {_upsert("NEW.image_id")}
        ELSIF TG_OP = 'UPDATE' THEN
            {_set(1, -1)}
            IF {" AND ".join(f"d_{c} = 0" for c in COUNTS)} AND d_consensus = 0 THEN
                RETURN NULL;  -- an edit that changes no count (the text, a timestamp)
            END IF;
            {_upsert("NEW.image_id")}
        ELSE
            {_set(1, 0)}
            {_upsert("NEW.image_id")}
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql;
    """,
    "DROP FUNCTION IF EXISTS review_tally_image(bigint);",
]


# 0005 defines the recounting functions this replaces (the way back) and the vendor-keyed RunSQL.
_previous = importlib.import_module("review.migrations.0005_image_tally_triggers")
BACKWARD = [_previous.POSTGRES[0], _previous.POSTGRES[1]]  # review_tally_image and the recounting trigger


class Migration(migrations.Migration):
    dependencies = [("review", "0006_quality_snapshot")]
    operations = [_previous.VendorRunSQL({"postgresql": (FORWARD, BACKWARD)})]
