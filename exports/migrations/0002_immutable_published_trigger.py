"""Published releases are immutable in the database itself, not only in the ORM.

PostgreSQL triggers refuse UPDATE and DELETE of a published release, and INSERT, UPDATE and
DELETE of the files of a published release, whoever runs the statement (raw SQL, another app,
psql). SQLite (the embedded default) relies on the model layer alone.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION exports_release_immutable() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'published' THEN
        RAISE EXCEPTION 'release % (id %) is published and immutable', OLD.version, OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER exports_release_immutable
    BEFORE UPDATE OR DELETE ON exports_release
    FOR EACH ROW EXECUTE FUNCTION exports_release_immutable();

CREATE OR REPLACE FUNCTION exports_releasefile_immutable() RETURNS trigger AS $$
DECLARE
    rid bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        rid := NEW.release_id;
    ELSE
        rid := OLD.release_id;
    END IF;
    IF EXISTS (SELECT 1 FROM exports_release WHERE id = rid AND status = 'published')
       OR (TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM exports_release WHERE id = NEW.release_id AND status = 'published'))
    THEN
        RAISE EXCEPTION 'release file % belongs to a published release and is immutable', COALESCE(OLD.name, NEW.name)
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER exports_releasefile_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON exports_releasefile
    FOR EACH ROW EXECUTE FUNCTION exports_releasefile_immutable();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS exports_releasefile_immutable ON exports_releasefile;
DROP FUNCTION IF EXISTS exports_releasefile_immutable();
DROP TRIGGER IF EXISTS exports_release_immutable ON exports_release;
DROP FUNCTION IF EXISTS exports_release_immutable();
"""


class PostgresOnlyRunSQL(migrations.RunSQL):
    """RunSQL that runs on PostgreSQL and is a no-op elsewhere (the embedded SQLite default)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0001_initial"),
    ]

    operations = [PostgresOnlyRunSQL(FORWARD, BACKWARD)]
