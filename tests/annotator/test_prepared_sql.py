"""The hot path's raw rows (infra.sql) load the same Python values as the ORM: aware datetimes,
booleans, JSON lists (SQLite returns text and 0/1; Django's PostgreSQL adapters return JSON as
text), so that nothing downstream can tell how a row was read. Both databases."""

import pytest
from rest_framework.authtoken.models import Token

from annotator.models import Assignment, Campaign
from annotator.services import assignment_next
from annotator.services.leases import lock_own_assignment
from infra import sql
from infra.roles import RoleTokenAuthentication


def _same(a, b, fields) -> None:
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        assert (x, type(x)) == (y, type(y)), f


@pytest.mark.embedded
def test_locked_assignment_and_its_campaign_read_as_the_orm_reads_them(db, campaign, annotator):
    from django.db import transaction

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    with transaction.atomic():
        raw = lock_own_assignment(assignment_id=a.pk, user=annotator)
    orm = Assignment.objects.get(pk=a.pk)
    _same(raw, orm, [f.attname for f in Assignment._meta.concrete_fields])
    assert isinstance(raw.prototype_image_ids, list) and raw.started_at.tzinfo is not None
    assert raw.campaign.ask_main_factor is Campaign.objects.get(pk=campaign.pk).ask_main_factor


@pytest.mark.embedded
def test_token_authentication_loads_the_user_as_the_orm_does(db, annotator):
    token = Token.objects.create(user=annotator)
    user, got = RoleTokenAuthentication().authenticate_credentials(token.key)
    orm = type(annotator).objects.get(pk=annotator.pk)
    _same(user, orm, [f.attname for f in type(orm)._meta.concrete_fields])
    assert got.created == Token.objects.get(pk=token.key).created
    assert user._platform_roles == {"annotator"}


@pytest.mark.embedded
def test_loaded_refuses_unknown_columns(db):
    with pytest.raises(ValueError, match="not columns of Campaign"):
        sql.loaded(Campaign, id=1, no_such_column=2)
