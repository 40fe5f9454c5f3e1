"""Labels from a published release (read through the exports app's verified files) and from a
curation run; user text escaped in the drill-down."""

from __future__ import annotations

import json

import pytest

from curation.models import CuratedImage
from evaluation import services
from exports import services as export_services
from infra.errors import Forbidden, NotFound
from tests.conftest import client_for
from tests.evaluation.helpers import reference_csv
from tests.exports.factories import curation_run_from_final, load_imagenet_x, package_lines

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
N_VAL = 60


@pytest.fixture
def run(db):
    return curation_run_from_final(load_imagenet_x(n_val=N_VAL, n_train=10))


@pytest.fixture
def release(run, maintainer):
    rel = export_services.release_create(dataset=run.dataset, version="1.0.0", curation_run=run, created_by=maintainer)
    started = export_services.release_build_start(release_id=rel.pk, user=maintainer, enqueue=False)
    export_services.release_build(release_id=rel.pk, token=started.build_token)
    return export_services.release_publish(release_id=rel.pk, user=maintainer)


def slice_predictions() -> bytes:
    """ResNet-50's rows for the sliced release's val images (plus all the others: unknown names)."""
    return reference_csv("ResNet50")


def evaluate(user, **kw):
    ev = services.evaluation_create(owner=user, name="rn", dataset_slug="imagenet-x", data=slice_predictions(),
                                    filename="rn.csv", enqueue=False, allow_low_coverage=True, **kw)  # fmt: skip
    services.evaluation_compute(evaluation_ids=[ev.pk], figures=False)
    ev.refresh_from_db()
    return ev


def test_evaluation_against_a_published_release_equals_the_toolkit_labels_on_those_images(release, researcher):
    # prototypes kept: the release ships its own prototypical_paths.csv (a slim one in this fixture)
    ev = evaluate(
        researcher, release_version="1.0.0", which_factor="multi", toolkit_compatible=True, filter_prototypes=False
    )
    assert ev.status == "done" and ev.release_id == release.pk
    names = [json.loads(x)["file_name"] for x in package_lines("val", "multi", N_VAL)]
    assert ev.coverage["annotated"] <= N_VAL and ev.coverage["matched"] == ev.coverage["annotated"]
    # same answer from the toolkit's own files restricted to the same images
    import numpy as np

    from evaluation import labels as L
    from evaluation import metrics as M
    from evaluation import parsing as P

    lab = L.toolkit_labels("multi")
    lab = lab.subset(np.isin(lab.file_names, names))
    lab_ev, _ = services.aligned_for(ev)
    assert sorted(lab_ev.file_names.tolist()) == sorted(lab.file_names.tolist())
    pred, _, _ = M.stack([M.align(lab, P.parse_csv(slice_predictions(), n_classes=1000))])
    table = M.toolkit_table(M.factor_counts(*M.correctness(lab, pred, "class", toolkit=True), lab.factors))
    assert ev.primary["overall"]["accuracy"] == pytest.approx(float(table["average"][0]), abs=1e-12)


def test_an_unknown_release_version_is_a_404(release, researcher):
    with pytest.raises(NotFound):
        evaluate(researcher, release_version="9.9.9")


def test_curation_run_labels_are_for_maintainers(run, researcher):
    with pytest.raises(Forbidden):
        evaluate(researcher, label_source="curation_run", curation_run_id=run.pk)


def test_annotator_text_is_escaped_in_the_drilldown(run, maintainer):
    first = CuratedImage.objects.filter(run=run, image__split="val").order_by("image__file_name").first()
    first.justification = '<script>alert("x")</script> & <b>bold</b>'
    first.one_word = "<img src=x onerror=alert(1)>"
    first.save()
    ev = evaluate(maintainer, label_source="curation_run", curation_run_id=run.pk, filter_prototypes=False)
    html = client_for(maintainer).get(f"/evaluation/{ev.pk}/images/", {"q": first.image.file_name}).content.decode()
    assert first.image.file_name in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
