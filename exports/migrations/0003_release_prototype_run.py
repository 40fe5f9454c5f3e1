"""Release.prototype_run: a real foreign key to the prototype run a release's datasheet describes.

Existing rows keep NULL and are not updated: published releases are immutable (the trigger of
0002 refuses any UPDATE of them, and their datasheet.json already names the run it used);
unpublished ones get the field at their next build. Adding a nullable column and its
constraint updates no row, so this runs with published releases present. (Reverse: drops the
column with ALTER TABLE, which fires no row trigger either.)
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0002_immutable_published_trigger"),
        ("prototypes", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="release",
            name="prototype_run",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="releases",
                to="prototypes.prototyperun",
            ),
        ),
    ]
