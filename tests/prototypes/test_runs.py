"""Prototype runs through the Django side: the command, services, selectors, predictions files."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from infra.errors import Conflict, DomainError
from prototypes import engine, services
from prototypes.models import Prototype, PrototypeRun, PrototypeShard, PrototypeSkip, RunSource
from prototypes.selectors import current_run, prototypes_for_class
from tests.prototypes.conftest import TINY, compute_tiny

pytestmark = pytest.mark.django_db

_compute = compute_tiny


def _selection(run: PrototypeRun) -> list[tuple[int, int, str, bool]]:
    return list(
        run.prototypes.order_by("image_class__index", "rank").values_list(
            "image_class__index", "rank", "image__file_name", "filled"
        )
    )


def test_command_records_a_random_weight_run_and_makes_it_current(dataset_factory):
    ds = dataset_factory(n_images=12, n_classes=3)
    run = _compute(ds, "--fill-incorrect")
    assert run.status == "done" and run.is_current
    assert current_run(dataset_id=ds.id) == run
    assert run.weights == "none" and run.random_weights and "random" in run.weights_id
    assert run.images_scored == 12 and run.images_skipped == 0 and run.images_done == run.images_total == 12
    assert run.library_versions["torch"] and run.preprocessing["crop"] == 32
    assert run.dtype == ("bfloat16" if engine.cpu_has_native_bf16() else "float32")
    assert run.batch_size == 4 and run.images_per_s > 0 and run.device.startswith("cpu")
    # Every class gets 3 prototypes; a random network is (almost) never right, so they are filled.
    assert run.prototypes.count() == 9
    for cls in ds.classes.all():
        got_run, images = prototypes_for_class(cls)
        assert got_run == run and len(images) == 3
        assert all(img.image_class_id == cls.id for img in images)


def test_without_fill_incorrect_short_classes_are_reported_not_filled(dataset_factory):
    ds = dataset_factory(n_images=6, n_classes=2)
    run = _compute(ds)
    correct = Prototype.objects.filter(run=run).count()
    assert not Prototype.objects.filter(run=run, filled=True).exists()
    assert len(run.short_classes) == 2 - sum(1 for n in run.short_classes.values() if n >= 3)
    assert correct == sum(min(3, n) for n in run.short_classes.values())


def test_form_falls_back_to_readable_images_only_while_no_run_exists(dataset_factory):
    ds = dataset_factory(n_images=8, n_classes=2)
    cls = ds.classes.first()
    run, images = prototypes_for_class(cls)
    assert run is None and [i.file_name for i in images] == sorted(cls.images.values_list("file_name", flat=True))[:3]
    _compute(ds, "--fill-incorrect")
    run, images = prototypes_for_class(cls)
    assert run is not None
    assert [i.id for i in images] == list(
        run.prototypes.filter(image_class=cls).order_by("rank").values_list("image_id", flat=True)
    )


def test_sharded_run_equals_one_pass(dataset_factory):
    ds = dataset_factory(n_images=16, n_classes=2)
    one = _compute(ds, "--fill-incorrect", "--no-current")
    sharded = _compute(ds, "--fill-incorrect", "--shards", "4")
    assert sharded.shards.count() == 4 and sharded.shards.filter(status="done").count() == 4
    assert _selection(sharded) == _selection(one)


def test_bad_files_in_the_dataset_are_recorded_with_reasons(dataset_factory):
    ds = dataset_factory(n_images=6, n_classes=2, bad={"broken.JPEG": b"\xff\xd8\xff\xe0 not really", "zero.JPEG": b""})
    run = _compute(ds, "--fill-incorrect")
    assert run.status == "done" and run.images_scored == 6 and run.images_skipped == 2
    assert run.skipped_reasons == {"truncated": 1, "unreadable": 1}
    assert set(PrototypeSkip.objects.filter(run=run).values_list("file_name", flat=True)) == {
        "broken.JPEG",
        "zero.JPEG",
    }
    assert not run.prototypes.filter(image__file_name__in=["broken.JPEG", "zero.JPEG"]).exists()


def test_unloadable_weights_name_checkpoint_and_create_no_run(dataset_factory, tmp_path, monkeypatch):
    ds = dataset_factory(n_images=3, n_classes=1)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(CommandError, match="--checkpoint"):
        call_command("compute_prototypes", "--dataset", ds.slug, "--model", "resnet18", stdout=io.StringIO())
    assert not PrototypeRun.objects.exists()


def test_run_on_a_dataset_without_files_is_refused_and_nothing_is_created(dataset_factory):
    ds = dataset_factory(n_images=0, n_classes=1)
    with pytest.raises(DomainError, match="no image files"):
        services.prototype_run_create(dataset=ds, model_name="resnet18", weights="none", enqueue=False)
    with pytest.raises(DomainError, match="Unknown model"):
        services.prototype_run_create(dataset=ds, model_name="nope", weights="none", enqueue=False)
    assert not PrototypeRun.objects.exists() and not PrototypeShard.objects.exists()


def test_exported_predictions_reproduce_the_run_without_a_model(dataset_factory, tmp_path):
    ds = dataset_factory(n_images=12, n_classes=3)
    export = tmp_path / "preds.csv"
    model_run = _compute(ds, "--fill-incorrect", "--export-predictions", str(export))
    with open(export) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and list(rows[0])[:3] == ["file_name", "predicted_class", "predicted_probability"]
    call_command(
        "compute_prototypes",
        "--dataset",
        ds.slug,
        "--predictions",
        str(export),
        "--fill-incorrect",
        stdout=io.StringIO(),
    )
    pred_run = PrototypeRun.objects.get(dataset=ds, source=RunSource.PREDICTIONS)
    assert _selection(pred_run) == _selection(model_run)
    assert pred_run.is_current and not PrototypeRun.objects.get(pk=model_run.pk).is_current


def test_predictions_file_selects_correct_images_by_probability_with_ties_by_name(dataset_factory, tmp_path):
    ds = dataset_factory(n_images=8, n_classes=2)  # class index 0 and 7, alternating
    images = list(ds.images.order_by("file_name").values_list("file_name", "image_class__index"))
    p = tmp_path / "p.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(engine.PRED_COLUMNS)
        for n, (name, label) in enumerate(images):
            w.writerow([name, label if n != 7 else 999, 0.5 if n < 4 else 0.9])  # ties at 0.5
        w.writerow(["not_in_dataset.JPEG", 1, 0.99])
    run = services.prototype_run_from_predictions(dataset=ds, path=str(p))
    assert _selection(run) == [
        (0, 1, images[4][0], False),
        (0, 2, images[6][0], False),
        (0, 3, images[0][0], False),
        (7, 1, images[5][0], False),
        (7, 2, images[1][0], False),
        (7, 3, images[3][0], False),
    ]
    assert run.images_skipped == 1 and run.skipped_reasons == {"not in dataset": 1}


def test_fill_incorrect_from_a_file_without_true_probabilities_is_refused(dataset_factory, tmp_path):
    ds = dataset_factory(n_images=2, n_classes=1)
    p = tmp_path / "p.csv"
    p.write_text("file_name,predicted_class,predicted_probability\ntiny_0000.JPEG,0,0.9\n")
    with pytest.raises(DomainError, match="true_class_probability"):
        services.prototype_run_from_predictions(dataset=ds, path=str(p), fill_incorrect=True)
    assert not PrototypeRun.objects.exists()


def test_only_a_finished_run_can_become_current(dataset_factory):
    ds = dataset_factory(n_images=3, n_classes=1)
    first = _compute(ds, "--fill-incorrect")
    queued = services.prototype_run_create(dataset=ds, model_name="resnet18", weights="none", enqueue=False)
    with pytest.raises(Conflict):
        services.prototype_run_set_current(run=queued)
    first.refresh_from_db()
    queued.refresh_from_db()
    assert first.is_current and not queued.is_current


def test_prototype_check_reports_accuracy_of_another_model_and_of_a_predictions_file(dataset_factory, tmp_path):
    ds = dataset_factory(n_images=6, n_classes=2)
    run = _compute(ds, "--fill-incorrect")
    protos = list(run.prototypes.select_related("image", "image_class"))
    p = tmp_path / "check.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(engine.PRED_COLUMNS)
        for n, proto in enumerate(protos):  # all right but one
            w.writerow([proto.image.file_name, proto.image_class.index if n else 500, 0.8])
    out = io.StringIO()
    call_command("prototype_check", "--dataset", ds.slug, "--predictions", str(p), stdout=out)
    assert f'"accuracy": {(len(protos) - 1) / len(protos)}' in out.getvalue()
    # The model that made the run: its filled prototypes are wrong by construction, its others right.
    result = services.prototypes_check(
        dataset=ds, spec=engine.ModelSpec(**TINY), options=engine.ScoreOptions(device="cpu", num_workers=0)
    )
    assert result["checked"] == len(protos)
    assert result["correct"] == sum(1 for x in protos if not x.filled)


@pytest.mark.embedded
def test_enqueued_run_completes_with_eager_tasks_on_the_embedded_default(
    dataset_factory, settings, django_capture_on_commit_callbacks
):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("the embedded default runs tasks eagerly; with a broker see test_tasks.py")
    ds = dataset_factory(n_images=6, n_classes=2)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.prototype_run_create(
            dataset=ds,
            model_name="resnet18",
            weights="none",
            image_size=32,
            shards=2,
            num_workers=0,
            fill_incorrect=True,
        )
    run.refresh_from_db()
    assert run.status == "done" and run.is_current and run.prototypes.count() == 6


def test_resume_command_scores_only_the_unfinished_shards(dataset_factory):
    ds = dataset_factory(n_images=8, n_classes=2)
    one_pass = _compute(ds, "--fill-incorrect", "--no-current")
    run = services.prototype_run_create(
        dataset=ds,
        model_name="resnet18",
        weights="none",
        image_size=32,
        batch_size=4,
        num_workers=0,
        fill_incorrect=True,
        shards=2,
        enqueue=False,
    )
    first = run.shards.get(index=0)
    assert services.prototype_shard_score(shard_id=first.pk)
    first.refresh_from_db()
    call_command(
        "compute_prototypes", "--dataset", ds.slug, "--resume", str(run.pk), stdout=io.StringIO(), stderr=io.StringIO()
    )
    run.refresh_from_db()
    again = run.shards.get(index=0)
    assert run.status == "done" and (again.attempts, again.finished_at) == (first.attempts, first.finished_at)
    assert run.shards.get(index=1).attempts == 1
    assert _selection(run) == _selection(one_pass)


def test_a_run_whose_checkpoint_vanished_fails_with_the_reason_and_resumes_once_it_is_back(
    dataset_factory, tmp_path, tiny_model
):
    import torch

    ds = dataset_factory(n_images=4, n_classes=2)
    ckpt = tmp_path / "r18.pth"
    torch.save(tiny_model.model.state_dict(), ckpt)
    run = services.prototype_run_create(
        dataset=ds,
        model_name="resnet18",
        checkpoint=str(ckpt),
        image_size=32,
        num_workers=0,
        fill_incorrect=True,
        enqueue=False,
    )
    moved = ckpt.rename(tmp_path / "elsewhere.pth")
    shard = run.shards.get()
    assert not services.prototype_shard_score(shard_id=shard.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "--checkpoint" in run.error and not run.prototypes.exists()
    moved.rename(ckpt)
    services.prototype_run_resume(run=run, enqueue=False)
    assert services.prototype_shard_score(shard_id=shard.pk, merge_inline=True)
    run.refresh_from_db()
    assert run.status == "done" and run.weights_id == "checkpoint:r18.pth" and len(run.weights_sha256) == 64
    assert run.prototypes.count() == 4
