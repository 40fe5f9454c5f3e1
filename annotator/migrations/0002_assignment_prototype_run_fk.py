"""Assignment.prototype_run_id (a plain integer) becomes a real foreign key to the prototype run.

Existing values are kept: the column keeps its name and type (prototype_run_id, bigint), only
the constraint and its index are added. Ids that no longer name a run (a run deleted while the
column was a plain integer) are set to NULL first, which is what SET_NULL would have done; the
shown image ids (prototype_image_ids) stay as they were.
"""

import django.db.models.deletion
from django.db import migrations, models


def null_dangling_run_ids(apps, schema_editor):
    Assignment = apps.get_model("annotator", "Assignment")
    PrototypeRun = apps.get_model("prototypes", "PrototypeRun")
    Assignment.objects.filter(prototype_run_id__isnull=False).exclude(
        prototype_run_id__in=PrototypeRun.objects.values("pk")
    ).update(prototype_run_id=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0001_initial"),
        ("prototypes", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(null_dangling_run_ids, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="prototype_run_id",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        db_column="prototype_run_id",
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="prototypes.prototyperun",
                    ),
                ),
            ],
            state_operations=[
                migrations.RemoveField(model_name="assignment", name="prototype_run_id"),
                migrations.AddField(
                    model_name="assignment",
                    name="prototype_run",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="prototypes.prototyperun",
                    ),
                ),
            ],
        ),
    ]
