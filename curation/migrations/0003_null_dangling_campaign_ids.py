"""Before CurationRun.campaign_id becomes a foreign key (0004): NULL the ids of campaigns that are gone.

The integer was never checked, so a run may name a campaign deleted since; the foreign key
constraint could not be added over it. Such runs are listed on stderr and keep everything
else (their results, figures and releases). Its own migration (transaction) so that the
ALTER TABLE of 0004 runs after these updates are committed.
"""

import sys

from django.db import migrations


def null_dangling_campaign_ids(apps, schema_editor):
    CurationRun = apps.get_model("curation", "CurationRun")
    Campaign = apps.get_model("annotator", "Campaign")
    dangling = CurationRun.objects.exclude(campaign_id=None).exclude(
        campaign_id__in=Campaign.objects.values("id")
    )
    ids = list(dangling.values_list("id", flat=True))
    if ids:
        sys.stderr.write(f"curation 0003: runs {ids} named a campaign that no longer exists; campaign set to NULL\n")
        dangling.update(campaign_id=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0001_initial"),
        ("curation", "0002_chunks_models_figures"),
    ]

    operations = [
        migrations.RunPython(null_dangling_campaign_ids, migrations.RunPython.noop, elidable=False),
    ]
