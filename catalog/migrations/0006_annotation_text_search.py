"""Full-text index of an annotation's justification and one-word summary (PostgreSQL only).

The dataset explorer searches the words of the final answers with
`to_tsvector('english', justification || ' ' || one_word) @@ websearch_to_tsquery(...)`; this
GIN index is on that same expression, so the planner uses it. Other databases (the embedded
SQLite) get no index and the explorer falls back to a case-insensitive substring match.
"""

from django.db import migrations

INDEX = "catalog_annotation_text_fts"
EXPRESSION = "to_tsvector('english'::regconfig, justification || ' ' || one_word)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_annotation USING gin ({EXPRESSION})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_annotationversion_append_only")]
    operations = [migrations.RunPython(create, drop)]
