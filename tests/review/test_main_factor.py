"""Reviewers see the main factor, can correct it, and the quality report measures agreement on it."""

import numpy as np
import pytest
from django.urls import reverse
from statsmodels.stats.inter_rater import fleiss_kappa

from catalog.models import Annotation, AnnotationVersion
from infra.errors import DomainError
from review import selectors, services
from tests.conftest import client_for

from .conftest import answer

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def with_main(ann: Annotation, main: str) -> Annotation:
    Annotation.objects.filter(pk=ann.pk).update(main_factor=main)
    ann.refresh_from_db()
    return ann


def test_the_audit_page_shows_the_main_factor(images, annotator, reviewer):
    ann = with_main(answer(images[0], annotator, ["pose", "darker"]), "darker")
    html = client_for(reviewer).get(reverse("review:audit", args=[ann.pk])).content.decode()
    assert 'class="rv-main">darker<' in html and 'id="correct-main-factor"' in html


def test_a_reviewer_corrects_the_main_factor_and_the_versions_keep_both(images, annotator, reviewer):
    ann = with_main(answer(images[0], annotator, ["pose", "darker"]), "darker")
    services.review_correct(
        annotation_id=ann.pk,
        reviewer=reviewer,
        expected_version=1,
        factors=["pose", "darker"],
        justification="turned more than dark",
        main_factor="pose",
    )
    ann.refresh_from_db()
    assert ann.main_factor == "pose" and ann.status == "corrected"
    assert AnnotationVersion.objects.get(annotation=ann, version=2).data["main_factor"] == "pose"


def test_a_correction_that_says_nothing_keeps_the_annotators_main_factor(images, annotator, reviewer):
    ann = with_main(answer(images[0], annotator, ["pose", "darker"]), "darker")
    services.review_correct(
        annotation_id=ann.pk,
        reviewer=reviewer,
        expected_version=1,
        factors=["pose", "darker", "color"],
        justification="also a colour change",
    )
    ann.refresh_from_db()
    assert ann.main_factor == "darker" and "color" in ann.selected_factors


def test_unticking_the_main_factor_without_naming_another_is_refused_and_changes_nothing(images, annotator, reviewer):
    ann = with_main(answer(images[0], annotator, ["pose", "darker", "color"]), "darker")
    with pytest.raises(DomainError) as e:
        services.review_correct(
            annotation_id=ann.pk, reviewer=reviewer, expected_version=1, factors=["pose", "color"], justification="x"
        )
    assert e.value.field == "main_factor"
    ann.refresh_from_db()
    assert ann.version == 1 and ann.main_factor == "darker" and ann.status == "submitted"


def test_the_correction_form_posts_the_main_factor(images, annotator, reviewer):
    ann = with_main(answer(images[0], annotator, ["pose", "darker"]), "darker")
    c = client_for(reviewer)
    token = c.get(reverse("review:audit", args=[ann.pk])).cookies["csrftoken"].value
    r = c.post(
        reverse("review:decide", args=[ann.pk, "correct"]),
        {
            "expected_version": 1,
            "factors": ["pose", "darker"],
            "justification": "mostly turned",
            "main_factor": "pose",
            "csrfmiddlewaretoken": token,
        },
    )
    assert r.status_code == 302
    ann.refresh_from_db()
    assert ann.main_factor == "pose"


def test_agreement_on_the_main_factor_equals_statsmodels(images, annotator, other_annotator, third_annotator):
    # Image 0: all three say pose; image 1: pose, pose, darker; image 2: two say darker, one color.
    plan = {0: ["pose", "pose", "pose"], 1: ["pose", "pose", "darker"], 2: ["darker", "darker", "color"]}
    users = [annotator, other_annotator, third_annotator]
    for i, mains in plan.items():
        for user, main in zip(users, mains, strict=True):
            with_main(answer(images[i], user, sorted({main, "background"})), main)
    answer(images[3], annotator, ["pose"])  # no main factor: does not count
    got = selectors.quality_report(n_boot=50)["main_factor"]
    table = np.array([[3, 0, 0], [2, 1, 0], [0, 2, 1]])
    assert got["n_items"] == 3 and got["n_answers"] == 9
    assert got["kappa"] == pytest.approx(fleiss_kappa(table), abs=1e-4)
    # Raw agreement: share of agreeing annotator pairs per image (3/3, 1/3, 1/3), averaged.
    assert got["raw"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3, abs=1e-4)
    assert len(got["kappa_ci"]) == 2


def test_the_quality_page_shows_the_main_factor_agreement(images, annotator, other_annotator, reviewer):
    for user in (annotator, other_annotator):
        with_main(answer(images[0], user, ["pose", "darker"]), "pose")
        with_main(answer(images[1], user, ["pose", "darker"]), "darker" if user == annotator else "pose")
    html = client_for(reviewer).get(reverse("review:quality")).content.decode()
    assert 'id="main-factor-agreement"' in html and "2 images with two or more main factors" in html
