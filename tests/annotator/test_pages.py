"""Pages: the form, role checks, 404 for other people's things, escaping, CSRF."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from annotator.models import Assignment, AssignmentStatus
from annotator.services import annotation_submit, assignment_next
from catalog.factors import FACTORS
from catalog.models import Annotation
from tests.annotator.conftest import answer
from tests.conftest import client_for


def _csrf_post(client, url, data):
    client.get(url)
    token = client.cookies["csrftoken"].value
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def _form_data(**over):
    d = {"pose": "on", "justification": "it is turned", "one_word": "pose"}
    d.update(over)
    return d


@pytest.mark.embedded
def test_anonymous_user_is_sent_to_login(campaign):
    resp = Client().get(reverse("annotator:next", args=[campaign.id]))
    assert resp.status_code == 302 and reverse("login") in resp["Location"]


@pytest.mark.embedded
def test_form_shows_class_prototypes_and_the_sixteen_factors_in_order(campaign, annotator):
    c = client_for(annotator)
    c.get(reverse("annotator:next", args=[campaign.id]))
    token = c.cookies["csrftoken"].value
    resp = c.post(reverse("annotator:next", args=[campaign.id]), {"csrfmiddlewaretoken": token}, follow=True)
    html = resp.content.decode()
    a = Assignment.objects.get(annotator=annotator)
    assert a.image.image_class.name in html
    positions = [html.index(f'title="{escape(f.definition)}"') for f in FACTORS]
    assert positions == sorted(positions)
    for f in FACTORS:
        assert f"<kbd>{f.shortcut}</kbd> <span>{escape(f.wording)}</span>" in html
    assert html.count('alt="prototype ') == 3
    assert "Remaining in campaign" in html and "nothing differs" in html
    assert a.prototype_image_ids and len(a.prototype_image_ids) == 3


@pytest.mark.embedded
def test_form_submit_saves_and_moves_to_the_next_image(campaign, annotator):
    c = client_for(annotator)
    first = assignment_next(campaign_id=campaign.id, user=annotator)
    url = reverse("annotator:assignment", args=[first.pk])
    resp = _csrf_post(c, url, _form_data(time_on_task_ms="4321"))
    # The submit (a POST) leases the next image and goes straight to its form.
    second = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.LEASED)
    assert resp.status_code == 302 and resp["Location"] == reverse("annotator:assignment", args=[second.pk])
    ann = Annotation.objects.get(annotator=annotator)
    assert ann.selected_factors == ["pose"] and ann.time_on_task_ms == 4321


@pytest.mark.embedded
def test_form_without_justification_shows_the_error_at_the_field_and_saves_nothing(campaign, annotator):
    c = client_for(annotator)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    resp = _csrf_post(c, reverse("annotator:assignment", args=[a.pk]), _form_data(justification=""))
    assert resp.status_code == 400
    assert 'id="justification-error"' in resp.content.decode()
    assert not Annotation.objects.exists()
    a.refresh_from_db()
    assert a.status == AssignmentStatus.LEASED


@pytest.mark.embedded
def test_form_with_zero_factors_needs_nothing_differs(campaign, annotator):
    c = client_for(annotator)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    url = reverse("annotator:assignment", args=[a.pk])
    resp = _csrf_post(c, url, {"justification": "same", "one_word": "same"})
    assert resp.status_code == 400 and 'id="factors-error"' in resp.content.decode()
    resp = _csrf_post(c, url, {"justification": "same", "one_word": "same", "nothing_differs": "on"})
    assert resp.status_code == 302
    assert Annotation.objects.get().nothing_differs


@pytest.mark.embedded
def test_post_without_csrf_token_is_refused(campaign, annotator):
    c = client_for(annotator)
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    resp = c.post(reverse("annotator:assignment", args=[a.pk]), _form_data())
    assert resp.status_code == 403
    assert not Annotation.objects.exists()


@pytest.mark.embedded
def test_other_annotators_assignment_and_annotation_are_404(campaign, annotator, other_annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    b = assignment_next(campaign_id=campaign.id, user=annotator)
    c = client_for(other_annotator)
    assert c.get(reverse("annotator:assignment", args=[b.pk])).status_code == 404
    assert c.get(reverse("annotator:edit", args=[ann.pk])).status_code == 404
    assert ann.justification not in c.get(reverse("annotator:mine")).content.decode()


@pytest.mark.embedded
def test_annotator_cannot_reach_maintainer_or_review_pages(annotator):
    c = client_for(annotator)
    assert c.get(reverse("annotator:campaigns")).status_code == 403


@pytest.mark.embedded
def test_justification_with_html_is_shown_escaped(campaign, annotator):
    evil = '<script>alert("x")</script><b>bold</b>'
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer(justification=evil)).annotation
    c = client_for(annotator)
    for url in (reverse("annotator:mine"), reverse("annotator:edit", args=[ann.pk])):
        html = c.get(url).content.decode()
        assert evil not in html and "&lt;script&gt;alert(" in html


@pytest.mark.embedded
def test_revising_from_the_page_adds_a_version(campaign, annotator):
    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    c = client_for(annotator)
    resp = _csrf_post(c, reverse("annotator:edit", args=[ann.pk]), _form_data(pose="", color="on", one_word="red"))
    assert resp.status_code == 302
    ann.refresh_from_db()
    assert ann.version == 2 and ann.selected_factors == ["color"] and ann.versions.count() == 2


@pytest.mark.embedded
def test_qualification_answer_shows_feedback(qualified_campaign, annotator):
    c = client_for(annotator)
    a = assignment_next(campaign_id=qualified_campaign.id, user=annotator)
    data = {**_form_data(pose=""), **{k: "on" for k in a.gold_item.factors}}
    resp = _csrf_post(c, reverse("annotator:assignment", args=[a.pk]), data)
    assert resp.status_code == 302 and resp["Location"].endswith("/feedback")
    html = c.get(resp["Location"]).content.decode()
    assert "expected answer" in html and "1.00" in html


@pytest.mark.embedded
def test_maintainer_creates_a_campaign_from_the_page(dataset, maintainer):
    c = client_for(maintainer)
    resp = _csrf_post(
        c,
        reverse("annotator:campaigns"),
        {
            "name": "page made",
            "dataset": dataset.slug,
            "split": "",
            "class_indices": "0",
            "overlap_fraction": "0.5",
            "overlap_copies": "3",
            "gold_rate": "0",
            "qualification_threshold": "0.5",
            "status": "active",
        },
    )
    assert resp.status_code == 302
    from annotator.models import Campaign

    camp = Campaign.objects.get(name="page made")
    assert camp.items.count() == 3 and camp.items.filter(planned=3).count() == 2


@pytest.mark.embedded
def test_my_annotations_links_a_rejected_answer_to_the_reviewers_comment(campaign, annotator, reviewer):
    from review.services import review_reject

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    ann = annotation_submit(assignment_id=a.pk, user=annotator, answer=answer()).annotation
    c = client_for(annotator)
    link = f'href="{reverse("review:returned")}"'
    assert link not in c.get(reverse("annotator:mine")).content.decode()
    review_reject(annotation_id=ann.pk, reviewer=reviewer, expected_version=ann.version, comment="background missed")
    assert link in c.get(reverse("annotator:mine")).content.decode()
    assert "background missed" in c.get(reverse("review:returned")).content.decode()


@pytest.mark.embedded
def test_the_form_renders_the_prototypes_the_lease_recorded_and_a_get_writes_nothing(campaign, annotator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    recorded = list(a.prototype_image_ids)
    assert len(recorded) == 3  # recorded once, when the lease was claimed
    # What the page shows is what the lease recorded (here: two of them, in reverse order).
    Assignment.objects.filter(pk=a.pk).update(prototype_image_ids=recorded[:2][::-1])
    c = client_for(annotator)
    with CaptureQueriesContext(connection) as q:
        html = c.get(reverse("annotator:assignment", args=[a.pk])).content.decode()
    writes = [
        x["sql"] for x in q.captured_queries if x["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]
    assert writes == []
    shown = [int(m) for m in re.findall(r'class="zoomable proto" data-full="[^"]*?/images/(\d+)/full"', html)]
    assert shown == recorded[:2][::-1]
    assert html.count('alt="prototype ') == 2
    a.refresh_from_db()
    assert a.prototype_image_ids == recorded[:2][::-1]


@pytest.mark.embedded
def test_deleting_a_prototype_run_keeps_the_lease_and_what_it_showed(campaign, annotator):
    from prototypes.models import PrototypeRun

    a = assignment_next(campaign_id=campaign.id, user=annotator)
    run = PrototypeRun.objects.create(dataset=campaign.dataset)
    Assignment.objects.filter(pk=a.pk).update(prototype_run=run)
    html = client_for(annotator).get(reverse("annotator:assignment", args=[a.pk])).content.decode()
    assert f"Prototype run #{run.pk}" in html
    run.delete()
    a.refresh_from_db()
    assert a.prototype_run_id is None and len(a.prototype_image_ids) == 3  # SET_NULL: provenance of the ids stays


@pytest.mark.embedded
def test_get_next_never_leases_an_image(campaign, annotator):
    """A link on another site (GET) must not lease an image for a signed-in annotator."""
    c = client_for(annotator)
    resp = c.get(reverse("annotator:next", args=[campaign.id]))
    assert resp.status_code == 200 and b'id="next-image"' in resp.content and b'method="post"' in resp.content
    assert not Assignment.objects.exists()


@pytest.mark.embedded
def test_post_next_leases_and_get_next_returns_to_the_held_lease(campaign, annotator):
    c = client_for(annotator)
    c.get(reverse("annotator:next", args=[campaign.id]))
    resp = _csrf_post(c, reverse("annotator:next", args=[campaign.id]), {})
    held = Assignment.objects.get(annotator=annotator)
    assert resp.status_code == 302 and resp["Location"] == reverse("annotator:assignment", args=[held.pk])
    again = c.get(reverse("annotator:next", args=[campaign.id]))
    assert again.status_code == 302 and again["Location"] == reverse("annotator:assignment", args=[held.pk])
    assert Assignment.objects.count() == 1


@pytest.mark.embedded
def test_post_next_without_csrf_token_is_refused(campaign, annotator):
    resp = client_for(annotator).post(reverse("annotator:next", args=[campaign.id]))
    assert resp.status_code == 403 and not Assignment.objects.exists()
