"""The form asks for the main factor where the campaign does: stored, versioned, kept on revise."""

import pytest
from django.urls import reverse

from annotator.models import Campaign
from annotator.services import annotation_revise, annotation_submit, assignment_next, campaign_create
from catalog.models import Annotation, AnnotationVersion
from infra.errors import DomainError
from tests.conftest import client_for

from .conftest import answer

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def _post(c, assignment, **data):
    token = c.get(reverse("annotator:assignment", args=[assignment.pk])).cookies["csrftoken"].value
    return c.post(
        reverse("annotator:assignment", args=[assignment.pk]),
        {"justification": "turned and dark", "one_word": "dark", "csrfmiddlewaretoken": token, **data},
    )


def test_new_campaigns_ask_for_the_main_factor(campaign):
    assert campaign.ask_main_factor is True
    assert Campaign._meta.get_field("ask_main_factor").default is True


def test_the_form_shows_one_main_radio_per_factor_where_the_campaign_asks(campaign, dataset, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    html = client_for(annotator).get(reverse("annotator:assignment", args=[a.pk])).content.decode()
    assert html.count('name="main_factor"') == 16 and "Shift</kbd>+factor key" in html
    quiet = campaign_create(name="no-main", dataset=dataset, gold_rate=0.0, ask_main_factor=False)
    b = assignment_next(campaign_id=quiet.id, user=annotator)
    assert (
        'name="main_factor"'
        not in client_for(annotator).get(reverse("annotator:assignment", args=[b.pk])).content.decode()
    )


def test_two_factors_without_a_main_one_are_refused_and_nothing_is_stored(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    r = _post(client_for(annotator), a, pose="on", darker="on")
    assert r.status_code == 400 and "main one" in r.content.decode()
    assert Annotation.objects.count() == 0


def test_a_main_factor_that_is_not_ticked_is_refused_by_the_form(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    r = _post(client_for(annotator), a, pose="on", darker="on", main_factor="color")
    assert r.status_code == 400 and "must be one of the ticked factors" in r.content.decode()
    assert Annotation.objects.count() == 0


def test_the_main_factor_is_stored_with_the_annotation_and_its_first_version(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    r = _post(client_for(annotator), a, pose="on", darker="on", main_factor="darker")
    assert r.status_code == 302
    ann = Annotation.objects.get()
    assert ann.main_factor == "darker" and AnnotationVersion.objects.get(annotation=ann).data["main_factor"] == "darker"


def test_one_ticked_factor_is_the_main_factor(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    assert _post(client_for(annotator), a, pose="on").status_code == 302
    assert Annotation.objects.get().main_factor == "pose"


def test_a_campaign_that_does_not_ask_stores_none(dataset, annotator):
    quiet = campaign_create(name="no-main", dataset=dataset, gold_rate=0.0, ask_main_factor=False)
    a = assignment_next(campaign_id=quiet.id, user=annotator)
    assert _post(client_for(annotator), a, pose="on", darker="on").status_code == 302
    assert Annotation.objects.get().main_factor == ""


def test_the_service_checks_the_campaign_rule_too(campaign, annotator):
    """The API answer is validated without the campaign; the submit service knows it."""
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    with pytest.raises(DomainError) as e:
        annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(factors=["pose", "darker"]))
    assert e.value.field == "main_factor" and Annotation.objects.count() == 0


def test_api_refuses_an_unticked_main_factor(campaign, annotator):
    from rest_framework.test import APIClient

    c = APIClient()
    c.force_authenticate(annotator)
    aid = c.post(f"/api/annotate/campaigns/{campaign.id}/next").json()["id"]
    body = {"factors": ["pose", "darker"], "justification": "x", "one_word": "x"}
    r = c.post(f"/api/annotate/assignments/{aid}/submit", {**body, "main_factor": "color"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["field"] == "main_factor"
    r = c.post(f"/api/annotate/assignments/{aid}/submit", body, format="json")
    assert r.status_code == 409 and r.json()["error"]["field"] == "main_factor"  # the campaign asks
    assert Annotation.objects.count() == 0
    r = c.post(f"/api/annotate/assignments/{aid}/submit", {**body, "main_factor": "pose"}, format="json")
    assert r.status_code == 201 and Annotation.objects.get().main_factor == "pose"


def test_revising_keeps_the_main_factor_in_every_version(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(
        assignment_id=a.pk, user=annotator, answer=answer(factors=["pose", "darker"], main_factor="darker")
    ).annotation
    annotation_revise(
        annotation_id=ann.pk,
        user=annotator,
        answer=answer(factors=["pose", "darker", "color"], main_factor="color"),
    )
    with pytest.raises(DomainError):  # the answer had a main factor: a revision keeps one
        annotation_revise(annotation_id=ann.pk, user=annotator, answer=answer(factors=["pose", "darker"]))
    versions = list(AnnotationVersion.objects.filter(annotation=ann).order_by("version"))
    assert [v.data["main_factor"] for v in versions] == ["darker", "color"]
    page = client_for(annotator).get(reverse("annotator:edit", args=[ann.pk])).content.decode()
    assert 'value="color" data-main-for="id_color" checked' in page


@pytest.mark.django_db(transaction=True)
def test_campaigns_that_existed_before_the_setting_keep_their_form():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("annotator", "0002_assignment_prototype_run_fk")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Dataset = apps.get_model("catalog", "Dataset")
        OldCampaign = apps.get_model("annotator", "Campaign")
        old = OldCampaign.objects.create(name="old", dataset=Dataset.objects.create(slug="old", name="old"))
    finally:
        # Forward to the latest state (0003_main_factor and what follows it), even after a failure:
        # a database left half-migrated breaks every later test that shares it.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert Campaign.objects.get(pk=old.pk).ask_main_factor is False
