"""On PostgreSQL, refuse UPDATE and DELETE of AnnotationVersion rows with a trigger.

Same guard as review's audit trail (review migration 0002): the model layer already refuses
(AppendOnlyModel); the trigger also stops raw SQL. Existing rows are untouched. Other databases
(the embedded SQLite default) rely on the model layer. TRUNCATE (test teardown) is a separate
trigger event.
"""

from django.db import migrations

TABLE = "catalog_annotationversion"

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION catalog_refuse_rewrite() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql;
    """,
    f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION catalog_refuse_rewrite();",
]
BACKWARD = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};",
    "DROP FUNCTION IF EXISTS catalog_refuse_rewrite();",
]


class PostgresOnlyRunSQL(migrations.RunSQL):
    """RunSQL that does nothing on other database vendors (the SQL is PL/pgSQL)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_image_class_plural")]
    operations = [PostgresOnlyRunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
