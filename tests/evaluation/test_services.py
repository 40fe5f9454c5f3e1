"""Creating and computing evaluations: nothing stored on bad input, coverage refusal, batches."""

from __future__ import annotations

import pytest
from django.conf import settings

from evaluation import services
from evaluation.models import Evaluation, EvaluationFigure
from infra.errors import DomainError, Forbidden

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
HEAD = b"file_name,predicted_class,predicted_probability\n"


def nothing_stored():
    media = (
        list((settings.MEDIA_ROOT / "evaluations").rglob("*")) if (settings.MEDIA_ROOT / "evaluations").exists() else []
    )
    return Evaluation.objects.count() == 0 and media == []


def create(user, data, **kw):
    return services.evaluation_create(owner=user, name="m", dataset_slug="imagenet-x", data=data,
                                      filename=kw.pop("filename", "m.csv"), label_source="toolkit", enqueue=False, **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"name,cls\n", "bad_header"),
        (HEAD + b"ILSVRC2012_val_00000001.JPEG,1,0.5\nILSVRC2012_val_00000001.JPEG,2,0.5\n", "duplicate_file_name"),
        (HEAD + b"ILSVRC2012_val_00000001.JPEG,1000,0.5\n", "class_out_of_range"),
        (HEAD + b"ILSVRC2012_val_00000001.JPEG,1,1.2\n", "bad_probability"),
        (HEAD + b"ILSVRC2012_val_00000001.JPEG,1,nan\n", "bad_probability"),
        (HEAD + b"\xff\xfe,1,0.5\n", "not_utf8"),
        (HEAD + b"unknown.jpg,1,0.5\n", "no_overlap"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(researcher, imagenet_x_dataset, data, code):
    with pytest.raises(DomainError) as info:
        create(researcher, data)
    assert info.value.code == code and info.value.status == 400
    assert nothing_stored()


def test_a_pickle_upload_is_refused(researcher, imagenet_x_dataset):
    with pytest.raises(DomainError) as info:
        create(researcher, b"\x80\x04junk", filename="model.pickle")
    assert info.value.code == "pickle_refused" and nothing_stored()


def test_low_coverage_is_refused_unless_asked(researcher, imagenet_x_dataset, resnet_csv):
    part = b"\n".join(resnet_csv.splitlines()[:5001]) + b"\n"
    with pytest.raises(DomainError) as info:
        create(researcher, part)
    assert info.value.code == "low_coverage" and nothing_stored()
    ev = create(researcher, part, allow_low_coverage=True)
    assert ev.coverage["annotated"] == 46110 and ev.coverage["matched"] < 5000
    assert ev.coverage["annotated_without_prediction"] == 46110 - ev.coverage["matched"]


def test_only_researchers_evaluate(annotator, reviewer, imagenet_x_dataset, resnet_csv):
    for user in (annotator, reviewer):
        with pytest.raises(Forbidden):
            create(user, resnet_csv)
    assert nothing_stored()


def test_reference_resnet50_gets_the_toolkit_numbers_and_figures(researcher, evaluate, resnet_csv):
    ev = evaluate(researcher, resnet_csv, toolkit_compatible=True, figures=True)
    assert ev.status == "done" and ev.metrics["mode"] == "toolkit"
    b = ev.primary
    assert round(b["overall"]["accuracy"], 5) == 0.74669 and b["overall"]["n"] == 46110
    assert round(b["factors"]["texture"]["error_ratio"], 2) == 2.39
    lo, hi = b["factors"]["texture"]["error_ratio_ci"]
    assert lo < 2.39 < hi and b["factors"]["texture"]["significant"]
    assert ev.coverage["unknown_file_names"] == 50000 - 46110
    keys = set(EvaluationFigure.objects.filter(evaluation=ev).values_list("key", flat=True))
    assert {"error_ratios", "accuracy_vs_overall", "metalabels", "reliability"} <= keys
    for f in EvaluationFigure.objects.filter(evaluation=ev):
        assert (settings.MEDIA_ROOT / f.png).read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (settings.MEDIA_ROOT / f.svg).read_bytes()[:500]


def test_corrected_real_accuracy_leaves_out_empty_real_sets(researcher, evaluate, resnet_csv):
    ev = evaluate(researcher, resnet_csv, correctness="real_class")
    assert round(ev.primary["overall"]["accuracy"], 4) == 0.8191 and ev.primary["overall"]["n"] == 46110 - 3085
    tk = evaluate(researcher, resnet_csv, name="tk", correctness="real_class", toolkit_compatible=True)
    assert round(tk.primary["overall"]["accuracy"], 4) == 0.7643


def test_a_batch_computes_many_models_with_progress(researcher, imagenet_x_dataset, resnet_csv):
    from tests.evaluation.helpers import reference_csv

    ids = [create(researcher, reference_csv(m)).pk for m in ("ResNet50", "ViT", "DINO")]
    batch = services.batch_start(owner=researcher, evaluation_ids=ids, enqueue=False)
    services.evaluation_compute(evaluation_ids=ids, batch_id=batch.pk, figures=False)
    batch.refresh_from_db()
    assert (batch.status, batch.processed, batch.total) == ("done", 3, 3)
    assert set(Evaluation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"done"}
