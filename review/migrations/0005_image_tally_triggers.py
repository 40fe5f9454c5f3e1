"""Triggers that keep review_imagetally equal to a recount of each image's answers.

After each INSERT, UPDATE or DELETE of a user or consensus row of catalog_annotation, the
image's rows are counted again (a handful, read through the (image, status) index) and the
tally row is upserted, in the same transaction as the write. A trigger rather than a signal:
bulk inserts, COPY, the admin and raw SQL all keep the tally right, and the recount costs no
extra round trip from the web process. The same statement runs on PostgreSQL (inside a
PL/pgSQL function) and on SQLite (the embedded default), which both accept INSERT .. SELECT ..
ON CONFLICT DO UPDATE ("WHERE true" settles SQLite's parsing ambiguity before ON CONFLICT).
On PostgreSQL the tally row is locked before the count (see review_tally_image); SQLite runs
one writer at a time. Then every existing image with answers is counted once.

The factor keys are written out here so that this migration stays what it was when applied.
"""

from django.db import migrations

KEYS = (
    "pose", "partial_view", "object_blocking", "person_blocking", "multiple_objects", "smaller", "larger",
    "brighter", "darker", "background", "color", "shape", "texture", "pattern", "style", "subcategory",
)  # fmt: skip
LIVE = "source = 'user' AND status <> 'superseded'"
COLUMNS = ", ".join(["image_id", "n", *(f"{k}_yes" for k in KEYS), "n_disagree", "has_consensus"])
UPDATE_SET = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS.split(", ")[1:])


def _counts(where: str, group: str = "") -> str:
    yes = ", ".join(f"COALESCE(SUM(CASE WHEN {LIVE} AND {k} THEN 1 ELSE 0 END), 0) AS {k}_yes" for k in KEYS)
    return (
        f"SELECT {'image_id, ' if group else ''}COALESCE(SUM(CASE WHEN {LIVE} THEN 1 ELSE 0 END), 0) AS n, {yes}, "
        "COALESCE(MAX(CASE WHEN source = 'consensus' THEN 1 ELSE 0 END), 0) = 1 AS has_consensus "
        f"FROM catalog_annotation WHERE {where} {group}"
    )


def _upsert(counts_sql: str, image_col: str, where: str = "true") -> str:
    split = " + ".join(f"(CASE WHEN c.{k}_yes > 0 AND c.{k}_yes < c.n THEN 1 ELSE 0 END)" for k in KEYS)
    return (
        f"INSERT INTO review_imagetally ({COLUMNS}) "
        f"SELECT {image_col}, c.n, {', '.join(f'c.{k}_yes' for k in KEYS)}, {split}, c.has_consensus "
        f"FROM ({counts_sql}) c WHERE {where} "
        f"ON CONFLICT (image_id) DO UPDATE SET {UPDATE_SET}"
    )


def _one(image_expr: str) -> str:
    return _upsert(_counts(f"image_id = {image_expr}"), image_expr)


WATCHED = "('user', 'consensus')"
FILL = _upsert(_counts(f"source IN {WATCHED}", group="GROUP BY image_id"), "c.image_id")

POSTGRES = [
    f"""
    CREATE OR REPLACE FUNCTION review_tally_image(img bigint) RETURNS void AS $$
    BEGIN
        -- The row, then its lock, then the count. Counting first would lose an answer: two
        -- transactions adding answers to one image would each count without the other's
        -- (uncommitted) row, and the second upsert would overwrite the first. Holding the
        -- row lock, the count (a new statement, so a new snapshot under READ COMMITTED)
        -- sees every answer committed before it.
        INSERT INTO review_imagetally ({COLUMNS}) VALUES (img, {", ".join(["0"] * (len(KEYS) + 2))}, false)
            ON CONFLICT (image_id) DO NOTHING;
        PERFORM 1 FROM review_imagetally WHERE image_id = img FOR UPDATE;
        {_one("img")};
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE OR REPLACE FUNCTION review_tally_annotation() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM review_tally_image(OLD.image_id);
            RETURN NULL;
        END IF;
        PERFORM review_tally_image(NEW.image_id);
        IF TG_OP = 'UPDATE' AND OLD.image_id <> NEW.image_id THEN
            PERFORM review_tally_image(OLD.image_id);
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql;
    """,
    f"""CREATE TRIGGER review_tally_insert AFTER INSERT ON catalog_annotation FOR EACH ROW
        WHEN (NEW.source IN {WATCHED}) EXECUTE FUNCTION review_tally_annotation();""",
    f"""CREATE TRIGGER review_tally_update AFTER UPDATE ON catalog_annotation FOR EACH ROW
        WHEN (NEW.source IN {WATCHED} OR OLD.source IN {WATCHED}) EXECUTE FUNCTION review_tally_annotation();""",
    f"""CREATE TRIGGER review_tally_delete AFTER DELETE ON catalog_annotation FOR EACH ROW
        WHEN (OLD.source IN {WATCHED}) EXECUTE FUNCTION review_tally_annotation();""",
    FILL,
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS review_tally_insert ON catalog_annotation;",
    "DROP TRIGGER IF EXISTS review_tally_update ON catalog_annotation;",
    "DROP TRIGGER IF EXISTS review_tally_delete ON catalog_annotation;",
    "DROP FUNCTION IF EXISTS review_tally_annotation();",
    "DROP FUNCTION IF EXISTS review_tally_image(bigint);",
]

SQLITE = [
    f"""CREATE TRIGGER review_tally_insert AFTER INSERT ON catalog_annotation
        WHEN NEW.source IN {WATCHED} BEGIN {_one("NEW.image_id")}; END;""",
    f"""CREATE TRIGGER review_tally_update AFTER UPDATE ON catalog_annotation
        WHEN NEW.source IN {WATCHED} OR OLD.source IN {WATCHED} BEGIN
        {_one("NEW.image_id")};
        {_upsert(_counts("image_id = OLD.image_id"), "OLD.image_id", where="OLD.image_id <> NEW.image_id")};
        END;""",
    f"""CREATE TRIGGER review_tally_delete AFTER DELETE ON catalog_annotation
        WHEN OLD.source IN {WATCHED} BEGIN {_one("OLD.image_id")}; END;""",
    FILL,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS review_tally_insert;",
    "DROP TRIGGER IF EXISTS review_tally_update;",
    "DROP TRIGGER IF EXISTS review_tally_delete;",
]


class VendorRunSQL(migrations.RunSQL):
    """RunSQL with one script per database vendor (PostgreSQL's is PL/pgSQL)."""

    def __init__(self, by_vendor: dict[str, tuple[list[str], list[str]]]):
        self.by_vendor = by_vendor
        super().__init__(sql=[], reverse_sql=[])

    def _run(self, schema_editor, backwards: bool) -> None:
        forward, backward = self.by_vendor.get(schema_editor.connection.vendor, ([], []))
        self._run_sql(schema_editor, backward if backwards else forward)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._run(schema_editor, backwards=False)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._run(schema_editor, backwards=True)

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {"by_vendor": self.by_vendor})


class Migration(migrations.Migration):
    dependencies = [("review", "0004_image_tally"), ("catalog", "0007_main_factor")]
    operations = [VendorRunSQL({"postgresql": (POSTGRES, POSTGRES_BACKWARD), "sqlite": (SQLITE, SQLITE_BACKWARD)})]
