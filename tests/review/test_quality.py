"""The quality report (dashboard, CSV and API) matches the reference implementations on the same answers."""

import csv
import io

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from catalog.factors import FACTOR_KEYS
from review import selectors
from tests.conftest import client_for
from tests.review.conftest import answer, make_images

pytestmark = pytest.mark.embedded

N_IMAGES = 24


@pytest.fixture
def random_answers(db, tmp_path, annotator, other_annotator, third_annotator):
    """Three annotators answer 24 images from a noisy shared truth; one extra image is single-answer."""
    rng = np.random.default_rng(7)
    imgs = make_images(tmp_path / "qual", N_IMAGES + 1)
    users = [annotator, other_annotator, third_annotator]
    truth = rng.random((N_IMAGES, 16)) < 0.25
    votes = np.zeros((N_IMAGES, 3, 16), dtype=bool)
    for i in range(N_IMAGES):
        for r, user in enumerate(users):
            v = np.where(rng.random(16) < 0.85, truth[i], ~truth[i])
            votes[i, r] = v
            answer(imgs[i], user, [k for k, x in zip(FACTOR_KEYS, v, strict=True) if x], seconds=5 + 5 * r + i % 3)
    answer(imgs[N_IMAGES], annotator, ["pose"])
    return votes, users


def test_per_factor_figures_match_statsmodels_and_krippendorff(random_answers):
    votes, _ = random_answers
    report = selectors.quality_report(n_boot=50)
    assert report["n_overlap_images"] == N_IMAGES
    for f, row in enumerate(report["factors"]):
        yes = votes[:, :, f].sum(1)
        table = np.stack([3 - yes, yes], axis=1)
        expected_kappa = fleiss_kappa(table)
        if np.isnan(expected_kappa):
            assert row["fleiss_kappa"] is None
        else:
            assert row["fleiss_kappa"] == pytest.approx(expected_kappa, abs=1e-4)
        expected_alpha = krippendorff.alpha(
            reliability_data=votes[:, :, f].T.astype(float), level_of_measurement="nominal"
        )
        assert row["alpha"] == pytest.approx(expected_alpha, abs=1e-4)
        assert row["n_items"] == N_IMAGES
        lo, hi = row["kappa_ci"]
        assert lo <= row["fleiss_kappa"] <= hi


def test_per_annotator_kappa_matches_sklearn_against_the_others_majority(random_answers):
    votes, users = random_answers
    report = selectors.quality_report(n_boot=20)
    by_user = {a["annotator_id"]: a for a in report["annotators"]}
    for r, user in enumerate(users):
        others = np.delete(votes, r, axis=1)
        reference = others.sum(1) * 2 > others.shape[1]  # strict majority of the two others (tie = no)
        expected = cohen_kappa_score(votes[:, r].ravel(), reference.ravel())
        assert by_user[user.pk]["kappa_vs_consensus"] == pytest.approx(expected, abs=1e-4)
    assert by_user[users[1].pk]["median_seconds"] == pytest.approx(11.0)  # 5 + 5 + median(i % 3)
    assert by_user[users[0].pk]["n_answers"] == N_IMAGES + 1


def test_breakdown_by_meta_label_uses_only_that_labels_items(random_answers):
    votes, _ = random_answers
    report = selectors.quality_report(n_boot=20)
    dog = next(m for m in report["by_meta_label"] if m["meta_label"] == "dog")
    assert dog["n_items"] == N_IMAGES // 2  # make_images alternates dog / bird classes
    yes = votes[0::2, :, 0].sum(1)
    assert dog["factors"][0]["raw_agreement"] == pytest.approx(
        np.mean((yes * (yes - 1) + (3 - yes) * (2 - yes)) / 6), abs=1e-4
    )


def test_dashboard_csv_and_api_show_the_same_numbers(random_answers, reviewer, api):
    report = selectors.quality_report(n_boot=20)
    pose = report["factors"][0]
    page = client_for(reviewer).get("/review/quality/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"{pose['fleiss_kappa']:.3f}" in html and 'id="factor-bars"' in html and 'id="scatter"' in html
    rows = list(csv.reader(io.StringIO(client_for(reviewer).get("/review/quality.csv").content.decode())))
    pose_row = next(r for r in rows if r[:3] == ["factor", "all", "pose"])
    assert float(pose_row[4]) == pytest.approx(pose["fleiss_kappa"])
    api.force_authenticate(reviewer)
    data = api.get("/api/review/quality/").json()
    assert data["factors"][0]["fleiss_kappa"] == pytest.approx(pose["fleiss_kappa"])


def test_filters_by_date_and_campaign(random_answers, reviewer):
    import datetime as dt

    from annotator.models import Campaign, CampaignItem
    from catalog.models import Image

    assert selectors.quality_report(selectors.QualityFilter(date_to=dt.date(2000, 1, 1)), n_boot=10)["n_answers"] == 0
    images = list(Image.objects.order_by("id")[:4])
    campaign = Campaign.objects.create(name="c", dataset=images[0].dataset)
    for img in images:
        CampaignItem.objects.create(campaign=campaign, image=img, planned=3)
    report = selectors.quality_report(selectors.QualityFilter(campaign_id=campaign.pk), n_boot=10)
    assert report["n_answers"] == 12 and report["n_overlap_images"] == 4
    page = client_for(reviewer).get(f"/review/quality/?campaign={campaign.pk}")
    assert page.context["report"]["n_answers"] == 12


def test_drift_is_the_change_of_tick_rate_over_time(db, tmp_path, annotator):
    from tests.review.conftest import minutes_ago

    imgs = make_images(tmp_path / "drift", 8)
    for i, img in enumerate(imgs):  # darker ticked only in the later half of the annotator's work
        answer(img, annotator, ["pose", "darker"] if i >= 4 else ["pose"], created_at=minutes_ago(100 - i))
    (row,) = selectors.quality_report(n_boot=10)["annotators"]
    assert row["drift"]["darker"] == pytest.approx(1.0) and row["drift"]["pose"] == pytest.approx(0.0)
    assert row["max_drift_factor"] == "darker"


def test_an_adjudicated_consensus_is_the_reference_for_per_annotator_kappa(
    db, tmp_path, annotator, other_annotator, reviewer
):
    from review import services

    imgs = make_images(tmp_path / "adj", 4)
    for i, img in enumerate(imgs):
        a = answer(img, annotator, ["pose", "color"] if i % 2 else ["pose"])
        b = answer(img, other_annotator, ["pose"])
        services.adjudication_settle(
            image_id=img.pk,
            reviewer=reviewer,
            factors=a.selected_factors,
            justification="as the first",
            expected_state=services.state_token([a, b]),
        )
    by_name = {r["username"]: r for r in selectors.quality_report(n_boot=10)["annotators"]}
    assert by_name["ann"]["kappa_vs_consensus"] == pytest.approx(1.0)
    assert by_name["ann"]["agreement_vs_consensus"] == pytest.approx(1.0)
    assert by_name["ann2"]["agreement_vs_consensus"] == pytest.approx(1 - 2 / (4 * 16), abs=1e-4)
