"""Every review page and endpoint checks the role; actions from pages and API; escaping; conflicts."""

import pytest
from django.urls import reverse

from catalog.models import Annotation
from review import services
from review.models import ReviewDecision
from tests.conftest import client_for
from tests.review.conftest import answer

pytestmark = pytest.mark.embedded


@pytest.fixture
def world(images, annotator, other_annotator):
    single = answer(images[0], annotator, ["pose"], justification="turned <b>around</b>")
    answer(images[1], annotator, ["pose"])
    answer(images[1], other_annotator, ["color"])
    return {"annotation": single, "multi_image": images[1]}


def pages(w):
    a, img = w["annotation"].pk, w["multi_image"].pk
    return [
        ("get", reverse("review:queue")),
        ("get", reverse("review:audit", args=[a])),
        ("get", reverse("review:adjudicate", args=[img])),
        ("get", reverse("review:timeline", args=[img])),
        ("get", reverse("review:quality")),
        ("get", reverse("review:quality_csv")),
        ("post", reverse("review:decide", args=[a, "accept"])),
        ("post", reverse("review:auto_accept")),
        ("get", "/api/review/queue/"),
        ("get", f"/api/review/annotations/{a}/"),
        ("post", f"/api/review/annotations/{a}/accept/"),
        ("post", f"/api/review/annotations/{a}/reject/"),
        ("post", f"/api/review/annotations/{a}/correct/"),
        ("get", f"/api/review/images/{img}/adjudication/"),
        ("post", f"/api/review/images/{img}/adjudication/"),
        ("get", f"/api/review/images/{img}/timeline/"),
        ("get", "/api/review/quality/"),
    ]


@pytest.mark.parametrize("role", ["annotator", "outsider"])
def test_annotators_and_outsiders_get_403_everywhere(world, role, request):
    user = request.getfixturevalue(role)
    c = client_for(user)
    c.enforce_csrf_checks = False  # the role check must refuse, not the CSRF check
    for method, url in pages(world):
        resp = getattr(c, method)(url)
        assert resp.status_code == 403, (method, url, resp.status_code)
    assert Annotation.objects.get(pk=world["annotation"].pk).status == "submitted"


def test_anonymous_users_are_sent_to_log_in(world, client):
    for method, url in pages(world):
        resp = getattr(client, method)(url)
        if url.startswith("/api/"):
            assert resp.status_code in (401, 403), url
        else:
            assert resp.status_code == 302 and "/accounts/login/" in resp["Location"], url


@pytest.mark.parametrize("role", ["reviewer", "maintainer"])
def test_reviewers_and_maintainers_reach_every_page(world, role, request):
    c = client_for(request.getfixturevalue(role))
    for method, url in pages(world):
        if method == "get":
            resp = c.get(url)
            assert resp.status_code == 200, url
            # Each page shows its content, not just a 200: JSON for the API, the CSV header, HTML otherwise.
            if url.startswith("/api/"):
                assert resp["Content-Type"].startswith("application/json") and resp.json(), url
            elif url == reverse("review:quality_csv"):
                assert resp.content.decode().startswith("table,group,key,n,fleiss_kappa"), url
            else:
                assert "<h1" in resp.content.decode(), url


def test_the_annotator_sees_the_returned_page_and_reviewers_do_not(world, annotator, reviewer):
    page = client_for(annotator).get(reverse("review:returned"))
    assert page.status_code == 200
    assert "Annotations returned to you" in page.content.decode()
    assert "Nothing was returned to you." in page.content.decode()  # nothing rejected yet
    assert client_for(reviewer).get(reverse("review:returned")).status_code == 403
    api = client_for(annotator).get("/api/review/returned/")
    assert api.status_code == 200 and api.json() == {"results": []}


def test_reject_from_the_page_returns_the_annotation_with_an_escaped_comment(world, reviewer, annotator):
    ann = world["annotation"]
    c = client_for(reviewer)
    c.get(reverse("review:audit", args=[ann.pk]))
    resp = c.post(
        reverse("review:decide", args=[ann.pk, "reject"]),
        {
            "expected_version": 1,
            "comment": "<script>alert('x')</script> look again",
            "csrfmiddlewaretoken": c.cookies["csrftoken"].value,
        },
    )
    assert resp.status_code == 302
    page = client_for(annotator).get(reverse("review:returned")).content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; look again" in page and "<script>alert" not in page
    audit = c.get(reverse("review:audit", args=[ann.pk])).content.decode()
    assert "&lt;script&gt;" in audit and "<script>alert" not in audit
    assert "turned &lt;b&gt;around&lt;/b&gt;" in audit
    timeline = c.get(reverse("review:timeline", args=[ann.image_id])).content.decode()
    assert "&lt;script&gt;" in timeline and "<script>alert" not in timeline


def test_a_stale_page_submission_shows_a_conflict_and_changes_nothing(world, reviewer, second_reviewer):
    ann = world["annotation"]
    first, second = client_for(reviewer), client_for(second_reviewer)
    for c in (first, second):
        c.get(reverse("review:audit", args=[ann.pk]))  # both opened the page at version 1
    ok = first.post(
        reverse("review:decide", args=[ann.pk, "accept"]),
        {"expected_version": 1, "csrfmiddlewaretoken": first.cookies["csrftoken"].value},
    )
    assert ok.status_code == 302
    late = second.post(
        reverse("review:decide", args=[ann.pk, "correct"]),
        {
            "expected_version": 1,
            "factors": ["darker"],
            "justification": "darker",
            "csrfmiddlewaretoken": second.cookies["csrftoken"].value,
        },
    )
    assert late.status_code == 409
    assert "Someone acted first: rev chose “accept”" in late.content.decode()
    ann.refresh_from_db()
    assert ann.status == "accepted" and ann.selected_factors == ["pose"] and ReviewDecision.objects.count() == 1


def test_csrf_stays_on(world, reviewer):
    resp = client_for(reviewer).post(
        reverse("review:decide", args=[world["annotation"].pk, "accept"]), {"expected_version": 1}
    )
    assert resp.status_code == 403
    assert Annotation.objects.get(pk=world["annotation"].pk).status == "submitted"


def test_api_conflict_has_the_one_error_shape(world, reviewer, second_reviewer, api):
    ann = world["annotation"]
    api.force_authenticate(reviewer)
    assert (
        api.post(f"/api/review/annotations/{ann.pk}/accept/", {"expected_version": 1}, format="json").status_code == 200
    )
    api.force_authenticate(second_reviewer)
    resp = api.post(f"/api/review/annotations/{ann.pk}/reject/", {"expected_version": 1, "comment": "x"}, format="json")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    assert resp.json()["error"]["details"]["status"] == "accepted"


@pytest.mark.parametrize(
    "url_tail, body, field",
    [
        ("reject/", {"expected_version": 1, "comment": ""}, "comment"),
        ("accept/", {"expected_version": "x"}, "expected_version"),
        ("correct/", {"expected_version": 1, "factors": ["nope"], "justification": "x"}, "factors"),
        ("correct/", {"expected_version": 1, "factors": [], "justification": "x"}, "factors"),
    ],
)
def test_api_bad_input_is_a_400_and_changes_nothing(world, reviewer, api, url_tail, body, field):
    ann = world["annotation"]
    api.force_authenticate(reviewer)
    resp = api.post(f"/api/review/annotations/{ann.pk}/{url_tail}", body, format="json")
    assert resp.status_code == 400 and resp.json()["error"]["field"] == field
    ann.refresh_from_db()
    assert ann.status == "submitted" and ann.version == 1


def test_api_adjudication_round_trip(world, reviewer, api):
    img = world["multi_image"]
    api.force_authenticate(reviewer)
    state = api.get(f"/api/review/images/{img.pk}/adjudication/").json()
    assert state["proposed"] == [] and set(state["undecided"]) == {"pose", "color"}
    resp = api.post(
        f"/api/review/images/{img.pk}/adjudication/",
        {"expected_state": state["expected_state"], "factors": ["pose"], "justification": "turned"},
        format="json",
    )
    assert resp.status_code == 201 and resp.json()["source"] == "consensus"
    again = api.post(
        f"/api/review/images/{img.pk}/adjudication/",
        {"expected_state": state["expected_state"], "factors": ["color"], "justification": "x"},
        format="json",
    )
    assert again.status_code == 409
    events = api.get(f"/api/review/images/{img.pk}/timeline/").json()["events"]
    assert [e["action"] for e in events][-3:] == ["adjudicate", "supersede", "supersede"]


def test_adjudication_page_settles_the_image(world, reviewer):
    img = world["multi_image"]
    c = client_for(reviewer)
    page = c.get(reverse("review:adjudicate", args=[img.pk]))
    state = page.context["state"]
    resp = c.post(
        reverse("review:adjudicate", args=[img.pk]),
        {
            "expected_state": state,
            "factors": ["color"],
            "justification": "the color differs",
            "csrfmiddlewaretoken": c.cookies["csrftoken"].value,
        },
    )
    assert resp.status_code == 302
    assert Annotation.objects.get(image=img, source="consensus").selected_factors == ["color"]


def test_quality_api_rejects_bad_filters(world, reviewer, api):
    api.force_authenticate(reviewer)
    resp = api.get("/api/review/quality/?date_from=yesterday")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid"


def test_services_used_by_the_pages_record_the_trail(world, reviewer):
    services.review_accept(annotation_id=world["annotation"].pk, reviewer=reviewer, expected_version=1)
    page = client_for(reviewer).get(reverse("review:timeline", args=[world["annotation"].image_id])).content.decode()
    assert "created" in page and "accepted" in page


def test_correct_from_the_page_keeps_the_original_version(world, reviewer):
    from catalog.models import AnnotationVersion

    ann = world["annotation"]
    c = client_for(reviewer)
    c.get(reverse("review:audit", args=[ann.pk]))
    resp = c.post(
        reverse("review:decide", args=[ann.pk, "correct"]),
        {
            "expected_version": 1,
            "factors": ["pose", "darker"],
            "justification": "turned, darker",
            "one_word": "pose",
            "csrfmiddlewaretoken": c.cookies["csrftoken"].value,
        },
    )
    assert resp.status_code == 302
    ann.refresh_from_db()
    assert ann.status == "corrected" and ann.selected_factors == ["pose", "darker"]
    assert AnnotationVersion.objects.get(annotation=ann, version=1).data["factors"] == ["pose"]


def test_a_bad_correction_from_the_page_shows_the_error_and_keeps_the_input(world, reviewer):
    ann = world["annotation"]
    c = client_for(reviewer)
    c.get(reverse("review:audit", args=[ann.pk]))
    resp = c.post(
        reverse("review:decide", args=[ann.pk, "correct"]),
        {
            "expected_version": 1,
            "factors": ["darker"],
            "justification": "",
            "csrfmiddlewaretoken": c.cookies["csrftoken"].value,
        },
    )
    assert resp.status_code == 400 and "justification is required" in resp.content.decode()
    assert 'value="darker" checked' in resp.content.decode()
    ann.refresh_from_db()
    assert ann.status == "submitted" and ann.version == 1


def test_an_unknown_action_is_404(world, reviewer):
    c = client_for(reviewer)
    c.get(reverse("review:queue"))
    resp = c.post(
        f"/review/annotations/{world['annotation'].pk}/delete/", {"csrfmiddlewaretoken": c.cookies["csrftoken"].value}
    )
    assert resp.status_code == 404


def test_maintainers_change_the_audit_settings_and_reviewers_cannot(world, maintainer, reviewer):
    from review.models import AuditSettings

    data = {
        "base_rate": 0.2,
        "new_annotator_rate": 0.6,
        "new_annotator_until": 10,
        "low_gold_rate": 0.7,
        "low_gold_below": 0.6,
        "consensus_threshold": 0.6,
        "auto_accept_full_agreement": "on",
        "min_annotations": 3,
        "seed": 4,
    }
    assert client_for(reviewer).get(reverse("review:settings")).status_code == 403
    c = client_for(maintainer)
    c.get(reverse("review:settings"))
    resp = c.post(reverse("review:settings"), {**data, "csrfmiddlewaretoken": c.cookies["csrftoken"].value})
    assert resp.status_code == 302
    cfg = AuditSettings.current()
    assert (cfg.base_rate, cfg.consensus_threshold, cfg.min_annotations) == (0.2, 0.6, 3)


@pytest.mark.parametrize("field, value", [("base_rate", 1.5), ("consensus_threshold", 0.3), ("min_annotations", 1)])
def test_out_of_range_settings_are_refused_at_the_field(world, maintainer, field, value):
    from review.models import AuditSettings

    c = client_for(maintainer)
    c.get(reverse("review:settings"))
    data = {
        "base_rate": 0.1,
        "new_annotator_rate": 0.5,
        "new_annotator_until": 50,
        "low_gold_rate": 0.5,
        "low_gold_below": 0.7,
        "consensus_threshold": 0.5,
        "min_annotations": 2,
        "seed": 1,
        field: value,
    }
    resp = c.post(reverse("review:settings"), {**data, "csrfmiddlewaretoken": c.cookies["csrftoken"].value})
    assert resp.status_code == 400 and resp.context["form"].errors[field]
    cfg = AuditSettings.current()
    assert (cfg.base_rate, cfg.consensus_threshold, cfg.min_annotations) == (0.1, 0.5, 2)


ONE_WORD_REFUSED = [
    ("x" * 41, "40 characters"),  # the form's character limit (catalog.answers.ONE_WORD_MAX)
    ("one two three four", "at most 3"),  # the form's word limit (ONE_WORD_MAX_WORDS)
]


@pytest.mark.parametrize(("one_word", "message"), ONE_WORD_REFUSED)
def test_a_correction_from_the_page_obeys_the_forms_one_word_limits(world, reviewer, one_word, message):
    """A reviewer's correction cannot store a summary that the annotator's form refuses."""
    ann = world["annotation"]
    c = client_for(reviewer)
    c.get(reverse("review:audit", args=[ann.pk]))
    resp = c.post(
        reverse("review:decide", args=[ann.pk, "correct"]),
        {
            "expected_version": 1,
            "factors": ["darker"],
            "justification": "darker",
            "one_word": one_word,
            "csrfmiddlewaretoken": c.cookies["csrftoken"].value,
        },
    )
    assert resp.status_code == 400
    assert message in resp.content.decode()
    ann.refresh_from_db()
    assert (ann.status, ann.version, ann.selected_factors, ann.one_word) == ("submitted", 1, ["pose"], "")
    assert ann.versions.count() == 1 and not ReviewDecision.objects.filter(annotation=ann).exists()


@pytest.mark.parametrize(("one_word", "message"), ONE_WORD_REFUSED)
def test_a_correction_from_the_api_obeys_the_forms_one_word_limits(world, reviewer, api, one_word, message):
    ann = world["annotation"]
    api.force_authenticate(reviewer)
    resp = api.post(
        f"/api/review/annotations/{ann.pk}/correct/",
        {"expected_version": 1, "factors": ["darker"], "justification": "darker", "one_word": one_word},
        format="json",
    )
    assert resp.status_code == 400
    body = resp.json()["error"]
    assert body["field"] == "one_word" and message in body["message"]
    ann.refresh_from_db()
    assert (ann.status, ann.version, ann.selected_factors, ann.one_word) == ("submitted", 1, ["pose"], "")
    assert ann.versions.count() == 1 and not ReviewDecision.objects.filter(annotation=ann).exists()


def test_an_adjudication_obeys_the_forms_one_word_limits(world, reviewer, api):
    img = world["multi_image"]
    api.force_authenticate(reviewer)
    state = api.get(f"/api/review/images/{img.pk}/adjudication/").json()["expected_state"]
    resp = api.post(
        f"/api/review/images/{img.pk}/adjudication/",
        {"expected_state": state, "factors": ["pose"], "justification": "turned", "one_word": "a b c d"},
        format="json",
    )
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "one_word"
    assert not Annotation.objects.filter(image=img, source="consensus").exists()
