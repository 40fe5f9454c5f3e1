"""Writes of curation chunks: compute one chunk's top factors and store its results with its "done" mark."""

from __future__ import annotations

import numpy as np
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Annotation
from curation import topfactor
from curation.models import CuratedImage, CurationChunk, CurationRun, SelectorModel
from curation.services.selector_models import reads_texts_apart, select_learned2, select_top_factors
from infra.bulkcopy import copy_rows
from infra.embeddings import embed_texts, load_nlp


def compute_chunk(
    *,
    params: dict,
    justifications: list[str],
    one_words: list[str],
    mask: np.ndarray,
    selector_model: SelectorModel | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top factor index per row (-1 = none) and whether each text had a vector."""
    if reads_texts_apart(params):
        return select_learned2(
            params=params, justifications=justifications, one_words=one_words, mask=mask, selector_model=selector_model
        )
    nlp = load_nlp(params["spacy_model"])
    texts = [
        topfactor.annotation_text(j, o, params["text_field"]) for j, o in zip(justifications, one_words, strict=True)
    ]
    vecs, has = embed_texts(nlp, texts)
    top = select_top_factors(params=params, vecs=vecs, mask=mask, selector_model=selector_model)
    return top, has


def curation_chunk_process(*, run_id: int, index: int) -> int:
    """Compute and store one chunk's results; a chunk already done is left alone. Returns rows stored."""
    run = CurationRun.objects.select_related("selector_model").filter(pk=run_id).first()
    chunk = CurationChunk.objects.filter(run_id=run_id, index=index).first()
    if (
        run is None
        or chunk is None
        or chunk.status == CurationChunk.Status.DONE
        or run.status == CurationRun.Status.FAILED
    ):
        return 0
    if run.status == CurationRun.Status.PENDING:
        CurationRun.objects.filter(pk=run_id, status=CurationRun.Status.PENDING).update(
            status=CurationRun.Status.RUNNING, started_at=timezone.now()
        )
    CurationChunk.objects.filter(pk=chunk.pk).update(attempts=F("attempts") + 1)
    fields = [
        "id",
        "image_id",
        "image__split",
        "image__image_class__meta_label",
        "justification",
        "one_word",
        *FACTOR_KEYS,
    ]
    rows = list(Annotation.objects.filter(id__in=chunk.annotation_ids).order_by("image_id").values_list(*fields))
    mask = np.array([r[6:] for r in rows], dtype=bool).reshape(len(rows), len(FACTOR_KEYS))
    top, has = compute_chunk(
        params=run.params,
        justifications=[r[4] for r in rows],
        one_words=[r[5] for r in rows],
        mask=mask,
        selector_model=run.selector_model,
    )
    results = [
        (
            run_id,
            r[1],
            r[0],
            r[2],
            r[3] if r[3] in META_LABELS else "other",
            r[4],
            r[5],
            FACTOR_KEYS[t] if t >= 0 else "",
            bool(h),
            *(bool(v) for v in r[6:]),
        )
        for r, t, h in zip(rows, top.tolist(), has.tolist(), strict=True)
    ]
    with transaction.atomic():
        # Lock the chunk: a redelivered copy of this task running at the same time waits here
        # and then sees `done`, so results are never written twice.
        locked = CurationChunk.objects.select_for_update().get(pk=chunk.pk)
        if locked.status == CurationChunk.Status.DONE:
            return 0
        CuratedImage.objects.filter(run_id=run_id, image_id__in=[r[1] for r in rows]).delete()
        _insert_results(results)
        locked.status = CurationChunk.Status.DONE
        locked.error = ""
        locked.save(update_fields=["status", "error", "updated_at"])
        # Progress = rows of done chunks, recounted under the run's row lock: a chunk redone after
        # a lost "done" mark is not counted twice, and concurrent chunks serialise only here.
        CurationRun.objects.select_for_update().filter(pk=run_id).values_list("id").get()
        done = CurationChunk.objects.filter(run_id=run_id, status=CurationChunk.Status.DONE).aggregate(n=Sum("size"))[
            "n"
        ]
        CurationRun.objects.filter(pk=run_id).update(processed=done or 0)
    return len(results)


_RESULT_COLUMNS = (
    "run_id",
    "image_id",
    "annotation_id",
    "split",
    "meta_label",
    "justification",
    "one_word",
    "top_factor",
    "text_has_vector",
    *FACTOR_KEYS,
)


def _insert_results(rows: list[tuple]) -> None:
    """Insert result rows (COPY on PostgreSQL, see infra.bulkcopy)."""
    if connection.vendor == "postgresql":
        copy_rows(CuratedImage._meta.db_table, _RESULT_COLUMNS, rows)
        return
    CuratedImage.objects.bulk_create(
        [CuratedImage(**dict(zip(_RESULT_COLUMNS, r, strict=True))) for r in rows], batch_size=500
    )
