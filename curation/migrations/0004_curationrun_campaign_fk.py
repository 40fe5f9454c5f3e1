"""CurationRun.campaign_id (a plain integer) becomes a foreign key to annotator.Campaign.

The column keeps its name (campaign_id), so existing runs keep their campaign: the field is
first pinned to its column, renamed, then altered into a ForeignKey on that same column
(PostgreSQL: type stays bigint, the >= 0 check goes, an index and the FK constraint come).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0001_initial"),
        ("curation", "0003_null_dangling_campaign_ids"),
    ]

    operations = [
        migrations.AlterField(
            model_name="curationrun",
            name="campaign_id",
            field=models.PositiveBigIntegerField(null=True, blank=True, db_column="campaign_id"),
        ),
        migrations.RenameField(model_name="curationrun", old_name="campaign_id", new_name="campaign"),
        migrations.AlterField(
            model_name="curationrun",
            name="campaign",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="curation_runs",
                to="annotator.campaign",
            ),
        ),
    ]
