"""Full-text index of a curated result's texts (PostgreSQL only): the explorer's word search
when it filters a curation run's own snapshot (links from the run and release pages)."""

from django.db import migrations

INDEX = "curation_curatedimage_text_fts"
EXPRESSION = "to_tsvector('english'::regconfig, justification || ' ' || one_word)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON curation_curatedimage USING gin ({EXPRESSION})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("curation", "0004_curationrun_campaign_fk")]
    operations = [migrations.RunPython(create, drop)]
