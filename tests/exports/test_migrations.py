"""Rehearsal: a database with curation runs and a published release migrates forward without loss.

curation 0003/0004 turn CurationRun.campaign_id into a foreign key (dangling ids become NULL);
exports 0003 adds Release.prototype_run while the immutability trigger of exports 0002 is in
place and a published release exists (the migration must update no published row).
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("curation", "0002_chunks_models_figures"), ("exports", "0002_immutable_published_trigger")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_runs_and_a_published_release_migrate_forward_keeping_their_data():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    rolled_back = {app for app, _ in BEFORE}
    old = _migrate([*BEFORE, *(node for node in latest if node[0] not in rolled_back)])
    try:
        User = old.get_model("auth", "User")
        Dataset = old.get_model("catalog", "Dataset")
        Campaign = old.get_model("annotator", "Campaign")
        CurationRun = old.get_model("curation", "CurationRun")
        Release = old.get_model("exports", "Release")
        user = User.objects.create(username="rehearsal")
        ds = Dataset.objects.create(slug="rehearsal", name="Rehearsal")
        campaign = Campaign.objects.create(name="rehearsal campaign", dataset=ds)
        scoped = CurationRun.objects.create(dataset=ds, campaign_id=campaign.pk, status="done", total=3, processed=3)
        dangling = CurationRun.objects.create(dataset=ds, campaign_id=campaign.pk + 1000, status="done")
        whole = CurationRun.objects.create(dataset=ds, status="done")
        published = Release.objects.create(
            dataset=ds,
            version="1.0.0",
            curation_run=scoped,
            created_by=user,
            status="published",
            archive_path="rehearsal/1.0.0/a.tar.gz",
            archive_sha256="ab" * 32,
        )
    finally:
        new = _migrate(latest)

    CurationRun = new.get_model("curation", "CurationRun")
    Release = new.get_model("exports", "Release")
    assert CurationRun.objects.get(pk=scoped.pk).campaign_id == campaign.pk
    assert CurationRun.objects.get(pk=scoped.pk).processed == 3
    assert CurationRun.objects.get(pk=dangling.pk).campaign_id is None
    assert CurationRun.objects.get(pk=whole.pk).campaign_id is None
    row = Release.objects.get(pk=published.pk)
    assert (row.status, row.archive_sha256, row.prototype_run_id) == ("published", "ab" * 32, None)
    # The trigger still guards the published release after the migration.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE exports_release SET notes = 'x' WHERE id = %s", [published.pk])
    # And the new column is a real foreign key.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE curation_curationrun SET campaign_id = %s WHERE id = %s", [campaign.pk + 5000, whole.pk])
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
