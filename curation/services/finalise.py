"""Writes of a run's end: check every chunk is stored, compute statistics and figures, mark it done.

`curation_run_execute` runs a whole run in this process (chunks, then finalise) without Celery.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.factors import FACTOR_KEYS
from curation import selector_training
from curation.models import CuratedImage, CurationChunk, CurationFigure, CurationRun
from curation.services.chunks import curation_chunk_process
from curation.services.runs import RunNotReady, curation_run_fail


def results_frame(run_id: int) -> pd.DataFrame:
    """The run's results as a DataFrame, with the published top factor of imported annotations
    (`reference_top_factor`, "" when there is none) for comparison."""
    cols = ["image_id", "split", "meta_label", "top_factor", "text_has_vector", *FACTOR_KEYS]
    rows = list(
        CuratedImage.objects.filter(run_id=run_id).order_by().values_list(*cols, "annotation__reference_top_factor")
    )
    df = pd.DataFrame.from_records(rows, columns=[*cols, "reference_top_factor"])
    df["reference_top_factor"] = df["reference_top_factor"].fillna("")
    return df


def curation_finalise(*, run_id: int) -> CurationRun:
    """Check every chunk is stored, compute statistics and figures, mark the run done.

    Raises RunNotReady while chunks are pending (the task retries); a run is never `done`
    with part of its results.
    """
    # Imported here, not at the top: matplotlib and scipy load only where runs finalise (the
    # workers import them at start through curation.tasks), not in every web process.
    from curation import figures, statistics

    run = CurationRun.objects.select_related("dataset", "selector_model").get(pk=run_id)
    if run.status in (CurationRun.Status.DONE, CurationRun.Status.FAILED):
        return run
    pending = run.chunks.exclude(status=CurationChunk.Status.DONE).count()
    if pending:
        raise RunNotReady(f"{pending} chunk(s) of run {run_id} are not done")
    stored = run.results.count()
    if stored != run.total:
        curation_run_fail(run_id=run_id, reason=f"{stored} results stored for {run.total} final annotations")
        run.refresh_from_db()
        return run
    df = results_frame(run_id)
    stats = statistics.compute_all(df)
    n_sel = df[list(FACTOR_KEYS)].sum(axis=1)
    stats["selection"] = {
        "images": int(len(df)),
        "no_factor": int((n_sel == 0).sum()),
        "single_factor": int((n_sel == 1).sum()),  # trivial: the top factor is the only one
        "multi_factor": int((n_sel >= 2).sum()),
        "text_without_vector": int((~df["text_has_vector"].astype(bool)).sum()),
        "text_without_vector_multi": int(((~df["text_has_vector"].astype(bool)) & (n_sel >= 2)).sum()),
    }
    # How often our selector agrees with the published top factor (images with 2+ factors), on
    # the images it did not learn from only: a learned selector scored on its own training
    # images would report a training score.
    held = selector_training.held_out_agreement(
        df=df, model_row=run.selector_model, params=run.params, dataset_slug=run.dataset.slug
    )
    if held is not None:
        stats["agreement_with_reference"] = held
    rendered = figures.render_all(stats)
    folder = Path("curation") / "runs" / str(run_id)
    (Path(settings.MEDIA_ROOT) / folder).mkdir(parents=True, exist_ok=True)
    for key, _title, png, svg in rendered:
        (Path(settings.MEDIA_ROOT) / folder / f"{key}.png").write_bytes(png)
        (Path(settings.MEDIA_ROOT) / folder / f"{key}.svg").write_bytes(svg)
    with transaction.atomic():
        locked = CurationRun.objects.select_for_update().get(pk=run_id)
        if locked.status != CurationRun.Status.RUNNING and locked.status != CurationRun.Status.PENDING:
            return locked
        CurationFigure.objects.filter(run_id=run_id).delete()
        CurationFigure.objects.bulk_create(
            CurationFigure(
                run_id=run_id,
                key=key,
                title=title,
                png=str(folder / f"{key}.png"),
                svg=str(folder / f"{key}.svg"),
                position=i,
            )
            for i, (key, title, _p, _s) in enumerate(rendered)
        )
        locked.stats = stats
        locked.status = CurationRun.Status.DONE
        locked.processed = stored
        locked.finished_at = timezone.now()
        locked.save(update_fields=["stats", "status", "processed", "finished_at"])
    return locked


def curation_run_execute(*, run_id: int) -> CurationRun:
    """Run every pending chunk and finalise in this process, without Celery.

    For the demo set-up and the naive/inline baselines; the same services the tasks call, so
    the results are the same as a run through workers.
    """
    for index in CurationChunk.objects.filter(run_id=run_id).exclude(status="done").values_list("index", flat=True):
        curation_chunk_process(run_id=run_id, index=index)
    return curation_finalise(run_id=run_id)
