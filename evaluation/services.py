"""Writes of the evaluation app: create an evaluation from a predictions file, compute many at
once (the Celery task calls `evaluation_compute`), share, and import the model zoo.

Nothing is stored for a bad file: parsing, alignment and the coverage check all run before the
row is created, and the row and its .npz are written in one transaction.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Dataset, ImageClass
from evaluation import label_sources, metrics, parsing, report, storage
from evaluation.models import (
    Correctness,
    Evaluation,
    EvaluationBatch,
    EvaluationFigure,
    EvaluationStatus,
    InputKind,
    LabelSource,
    WhichFactor,
    ZooModel,
)
from infra.errors import DomainError, Forbidden, NotFound
from infra.roles import Role, has_role

log = logging.getLogger(__name__)
CHUNK = 50  # models per matrix product in a batch (memory stays flat in the number of models)
TASK_NAME = "evaluation.compute_batch"


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _n_classes(dataset: Dataset) -> int:
    last = ImageClass.objects.filter(dataset=dataset).order_by("-index").values_list("index", flat=True).first()
    return (last + 1) if last is not None else 1000


def _resolve_labels(
    *, user: Any, dataset: Dataset, label_source: str, release_version: str, curation_run_id: int | None
) -> tuple[str, Any, Any]:
    from curation.models import CurationRun
    from exports.selectors import releases_for

    if curation_run_id is not None or label_source == LabelSource.CURATION_RUN:
        if not has_role(user, Role.MAINTAINER):
            raise Forbidden("Only maintainers evaluate against an unpublished curation run; pick a published release.")
        run = CurationRun.objects.filter(pk=curation_run_id, dataset=dataset, status=CurationRun.Status.DONE).first()
        if run is None:
            raise NotFound(f"No finished curation run #{curation_run_id} of {dataset.slug}.", field="curation_run")
        return LabelSource.CURATION_RUN, None, run
    if label_source == LabelSource.TOOLKIT:
        return LabelSource.TOOLKIT, None, None
    qs = releases_for(user).filter(dataset=dataset, status="published")
    release = qs.filter(version=release_version).first() if release_version else qs.order_by("-published_at").first()
    if release is None:
        what = (
            f"version {release_version} of {dataset.slug}"
            if release_version
            else f"a published release of {dataset.slug}"
        )
        raise NotFound(f"There is no {what} to evaluate against.", field="release")
    return LabelSource.RELEASE, release, None


def _parse(data: bytes, filename: str, n_classes: int) -> tuple[parsing.Predictions, str]:
    limit = settings.EVALUATION_MAX_UPLOAD_MB * 2**20
    suffix = Path(filename).suffix.lower()
    try:
        if suffix in (".npz", ".npy"):
            return parsing.parse_array_file(
                data, n_classes=n_classes, max_bytes=max(limit, parsing.MAX_ARRAY_BYTES)
            ), InputKind.ARRAY
        if suffix in (".pickle", ".pkl"):
            raise parsing.PredictionFileError(
                "Pickle files are never read from an upload (unpickling can run code); convert it to .npz, or use "
                "`manage.py evaluate_model --predictions FILE.pickle` for a local file.",
                code="pickle_refused",
            )
        return parsing.parse_csv(data, n_classes=n_classes, max_bytes=limit), InputKind.CSV
    except parsing.PredictionFileError as exc:
        raise DomainError(exc.message, code=exc.code, field="predictions", details={"line": exc.line})


def evaluation_create(
    *,
    owner: Any,
    name: str,
    dataset_slug: str,
    data: bytes | None = None,
    filename: str = "predictions.csv",
    predictions: parsing.Predictions | None = None,
    input_kind: str = "",
    label_source: str = LabelSource.RELEASE,
    release_version: str = "",
    curation_run_id: int | None = None,
    split: str = "val",
    which_factor: str = WhichFactor.TOP,
    correctness: str = Correctness.CLASS,
    filter_prototypes: bool = True,
    toolkit_compatible: bool = False,
    k_worst: int = 100,
    allow_low_coverage: bool = False,
    batch: EvaluationBatch | None = None,
    enqueue: bool = True,
) -> Evaluation:
    """Parse, check and store one model's predictions; the metrics follow in `evaluation_compute`."""
    if not has_role(owner, Role.RESEARCHER):
        raise Forbidden("Evaluating models needs the researcher role.")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise DomainError("Give the model a name (1-200 characters).", field="name")
    if which_factor not in WhichFactor.values:
        raise DomainError(f"which_factor is top or multi, not {which_factor!r}.", field="which_factor")
    if correctness not in Correctness.values:
        raise DomainError(f"correctness is one of {', '.join(Correctness.values)}.", field="correctness")
    if split not in ("train", "val"):
        raise DomainError("split is train or val.", field="split")
    if not 1 <= k_worst <= 1000:
        raise DomainError("k_worst is between 1 and 1000.", field="k_worst")
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise NotFound(f"No dataset {dataset_slug!r}.", field="dataset")
    source, release, run = _resolve_labels(
        user=owner,
        dataset=dataset,
        label_source=label_source,
        release_version=release_version,
        curation_run_id=curation_run_id,
    )
    sha = hashlib.sha256(data).hexdigest() if data is not None else ""
    if predictions is None:
        if data is None:
            raise DomainError("No predictions file.", field="predictions")
        predictions, kind = _parse(data, filename, _n_classes(dataset))
        input_kind = input_kind or kind
    full = label_sources.label_set(source=source, release=release, curation_run=run, split=split, which=which_factor)
    if correctness == Correctness.REAL and full.real_keys is None:
        raise DomainError("ReaL labels exist for ImageNet val images only.", field="correctness")
    evaluated = label_sources.evaluated_labels(full, filter_prototypes=filter_prototypes)
    a_eval = metrics.align(evaluated, predictions)
    coverage = {
        "annotated": evaluated.n,
        "predictions": len(predictions),
        "matched": a_eval.n_matched,
        "unknown_file_names": a_eval.n_unknown,
        "annotated_without_prediction": evaluated.n - a_eval.n_matched,
        "share": a_eval.n_matched / evaluated.n if evaluated.n else 0.0,
    }
    if a_eval.n_matched == 0:
        raise DomainError(
            "No file name of the predictions is an annotated image of these labels.",
            code="no_overlap",
            field="predictions",
            details=coverage,
        )
    threshold = settings.EVALUATION_MIN_COVERAGE
    if coverage["share"] < threshold and not allow_low_coverage:
        raise DomainError(
            f"The predictions cover {coverage['share']:.1%} of the {evaluated.n:,} annotated images "
            f"(below {threshold:.0%}); {coverage['unknown_file_names']:,} file names are unknown. "
            "Ask for it explicitly (allow low coverage) to evaluate anyway.",
            code="low_coverage",
            field="predictions",
            details=coverage,
        )
    a_full = metrics.align(full, predictions)
    with transaction.atomic():
        ev = Evaluation.objects.create(
            owner=owner, name=name, dataset=dataset, label_source=source, release=release, curation_run=run,
            split=split, which_factor=which_factor, correctness=correctness, filter_prototypes=filter_prototypes,
            toolkit_compatible=toolkit_compatible, k_worst=k_worst, input_kind=input_kind or InputKind.CSV,
            input_name=Path(filename).name[:255], input_sha256=sha, coverage=coverage, batch=batch,
        )  # fmt: skip
        rel = f"evaluations/{ev.pk}/predictions.npz"
        storage.write_predictions(media_root() / rel, a_full, storage.label_fingerprint(full))
        ev.predictions_path = rel
        ev.save(update_fields=["predictions_path"])
        if enqueue:
            _enqueue([ev.pk], None)
    return ev


def _enqueue(ids: list[int], batch_id: int | None) -> None:
    """By name, after commit (infra.enqueue); eagerly in-process in the embedded default."""
    from infra.enqueue import enqueue_task

    enqueue_task(TASK_NAME, ids, batch_id)


def batch_start(*, owner: Any, evaluation_ids: list[int], enqueue: bool = True) -> EvaluationBatch:
    batch = EvaluationBatch.objects.create(owner=owner, total=len(evaluation_ids))
    Evaluation.objects.filter(pk__in=evaluation_ids, owner=owner).update(batch=batch)
    if enqueue:
        _enqueue(evaluation_ids, batch.pk)
    return batch


def _load(ev: Evaluation):
    full = label_sources.label_set(
        source=ev.label_source, release=ev.release, curation_run=ev.curation_run, split=ev.split, which=ev.which_factor
    )
    return full, label_sources.evaluated_labels(full, filter_prototypes=ev.filter_prototypes)


def aligned_for(ev: Evaluation) -> tuple[Any, metrics.Aligned]:
    """The evaluated labels and the model's stored predictions on their rows."""
    full, evaluated = _load(ev)
    a = storage.read_predictions(media_root() / ev.predictions_path, full)
    if ev.filter_prototypes:
        keep = ~full.is_prototype
        a = metrics.Aligned(
            a.pred[keep], None if a.prob is None else a.prob[keep], None if a.correct5 is None else a.correct5[keep],
            ev.coverage.get("predictions", 0), ev.coverage.get("unknown_file_names", 0),
        )  # fmt: skip
    return evaluated, a


def evaluation_compute(*, evaluation_ids: list[int], batch_id: int | None = None, figures: bool = True) -> int:
    """Compute the metrics of many evaluations: grouped by label set, CHUNK models per matrix product."""
    from evaluation import figures as fig_mod

    evs = list(
        Evaluation.objects.filter(pk__in=evaluation_ids)
        .exclude(status=EvaluationStatus.DONE)
        .select_related("dataset", "release", "curation_run")
    )
    if batch_id:
        EvaluationBatch.objects.filter(pk=batch_id).update(status=EvaluationStatus.RUNNING, total=len(evs))
    groups: dict[tuple, list[Evaluation]] = {}
    for ev in evs:
        key = (ev.label_source, ev.release_id, ev.curation_run_id, ev.split, ev.which_factor, ev.filter_prototypes,
               ev.toolkit_compatible, ev.correctness, ev.k_worst)  # fmt: skip
        groups.setdefault(key, []).append(ev)
    done = 0
    for group in groups.values():
        for c0 in range(0, len(group), CHUNK):
            chunk = group[c0 : c0 + CHUNK]
            Evaluation.objects.filter(pk__in=[e.pk for e in chunk]).update(status=EvaluationStatus.RUNNING)
            try:
                pairs = [aligned_for(e) for e in chunk]
                labels = pairs[0][0]
                head = chunk[0]
                reports = report.evaluate_batch(
                    labels, [a for _, a in pairs], toolkit=head.toolkit_compatible, primary=head.correctness,
                    k_worst=head.k_worst,
                )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - the rows say why; the task must not die silently
                log.exception("evaluation chunk failed")
                Evaluation.objects.filter(pk__in=[e.pk for e in chunk]).update(
                    status=EvaluationStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
                )
                continue
            for ev, rep in zip(chunk, reports, strict=True):
                rep["coverage"] = ev.coverage
                ev.metrics = rep
                if figures:  # before `done`, so that a done evaluation always shows its figures
                    try:
                        figures_store(ev, fig_mod)
                    except Exception:  # noqa: BLE001 - a figure is not worth losing the metrics
                        log.exception("figures of evaluation %s failed", ev.pk)
                ev.status, ev.finished_at = EvaluationStatus.DONE, timezone.now()
                ev.save(update_fields=["metrics", "status", "finished_at"])
            done += len(chunk)
            if batch_id:
                EvaluationBatch.objects.filter(pk=batch_id).update(processed=done)
    if batch_id:
        EvaluationBatch.objects.filter(pk=batch_id).update(status=EvaluationStatus.DONE, finished_at=timezone.now())
    return done


def figures_store(ev: Evaluation, fig_mod: Any) -> None:
    from evaluation.selectors import zoo_context

    zoo = zoo_context(ev)
    out = media_root() / "evaluations" / str(ev.pk)
    out.mkdir(parents=True, exist_ok=True)
    for key, title, png, svg in fig_mod.render_all(ev.metrics, ev.correctness, zoo, name=ev.name):
        (out / f"{key}.png").write_bytes(png)
        (out / f"{key}.svg").write_bytes(svg)
        EvaluationFigure.objects.update_or_create(
            evaluation=ev, key=key,
            defaults={"title": title, "png": f"evaluations/{ev.pk}/{key}.png", "svg": f"evaluations/{ev.pk}/{key}.svg"},
        )  # fmt: skip


def evaluation_share(*, user: Any, evaluation_id: int, shared: bool = True) -> Evaluation:
    ev = Evaluation.objects.filter(pk=evaluation_id).first()
    if ev is None or (ev.owner_id != user.pk and not has_role(user, Role.MAINTAINER)):
        raise NotFound(f"No evaluation {evaluation_id}.")
    if ev.owner_id != user.pk:
        raise Forbidden("Only its owner shares an evaluation.")
    ev.shared = shared
    ev.save(update_fields=["shared"])
    return ev


def zoo_import() -> int:
    """Load the toolkit's published per-factor tables (idempotent: existing rows are kept)."""
    from evaluation.zoo import read_tables

    rows = [ZooModel(**r) for r in read_tables()]
    before = ZooModel.objects.count()
    ZooModel.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return ZooModel.objects.count() - before


class _Collector:
    """A prototype-engine prediction sink keeping (file name, class, probability) in memory."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.pred: list[int] = []
        self.prob: list[float] = []

    def __call__(self, key: str, label: int, predicted: int, prob: float, true_prob: float) -> None:
        self.names.append(key.rsplit("/", 1)[-1])
        self.pred.append(predicted)
        self.prob.append(prob)

    def predictions(self) -> parsing.Predictions:
        import numpy as np

        return parsing.Predictions(
            file_names=np.array(self.names, dtype=str),
            predicted_class=np.array(self.pred, dtype=np.int32),
            probability=np.array(self.prob, dtype=np.float32),
        )


def evaluation_from_scoring(
    *,
    owner: Any,
    name: str,
    dataset_slug: str,
    model_name: str,
    weights: str = "none",
    checkpoint: str = "",
    scoring_split: str = "",
    **evaluation: Any,
) -> Evaluation:
    """Score the dataset's images with a torchvision model through the prototype engine and
    evaluate its per-image predictions directly (no predictions file in between). Runs here;
    `evaluation.score_and_evaluate` runs it on the gpu queue."""
    from prototypes import services as proto_services

    if not has_role(owner, Role.RESEARCHER):
        raise Forbidden("Evaluating models needs the researcher role.")
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise NotFound(f"No dataset {dataset_slug!r}.", field="dataset")
    run = proto_services.prototype_run_create(
        dataset=dataset, model_name=model_name, weights=weights, checkpoint=checkpoint, split=scoring_split,
        make_current=False, created_by=owner, enqueue=False,
    )  # fmt: skip
    sink = _Collector()
    for shard_id in run.shards.order_by("index").values_list("id", flat=True):
        proto_services.prototype_shard_score(shard_id=shard_id, merge_inline=True, sink=sink)
    run.refresh_from_db()
    if not sink.names:
        raise DomainError(f"Prototype run #{run.pk} scored no image ({run.error or run.status}).", code="no_scores")
    return evaluation_create(
        owner=owner, name=name, dataset_slug=dataset_slug, predictions=sink.predictions(), input_kind=InputKind.SCORING,
        filename=f"prototype run #{run.pk} ({model_name}, {run.weights or checkpoint})", **evaluation,
    )  # fmt: skip
