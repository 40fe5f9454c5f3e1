"""On PostgreSQL, refuse UPDATE and DELETE of the append-only tables with a trigger.

The model layer already refuses (AppendOnlyModel); the trigger also stops raw SQL and any
future code path that bypasses the ORM. Other databases (the embedded SQLite default) rely on
the model layer only. TRUNCATE is a separate trigger event (test teardown uses it).
"""

from django.db import migrations

TABLES = ("review_auditevent", "review_reviewdecision", "review_adjudicationrecord")

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION review_refuse_rewrite() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql;
    """,
    *(
        f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
        f"FOR EACH ROW EXECUTE FUNCTION review_refuse_rewrite();"
        for t in TABLES
    ),
]
BACKWARD = [*(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in TABLES),
            "DROP FUNCTION IF EXISTS review_refuse_rewrite();"]


class PostgresOnlyRunSQL(migrations.RunSQL):
    """RunSQL that does nothing on other database vendors (the SQL is PL/pgSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]
    operations = [PostgresOnlyRunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
