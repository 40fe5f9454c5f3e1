"""Writes of the curation app: start a run, process a chunk, finalise, fail; selector models; meta-labels.

The pipeline (tasks.py) is a Celery chord: one task per chunk of final annotations, then one
finalise task. Every function here is safe to call twice with the same arguments (a retried
or redelivered task), because each writes its results and its "done" mark in one transaction.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from catalog.errors import Conflict, DomainError, NotFound
from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Annotation, Dataset, ImageClass, Split
from catalog.selectors import final_annotations
from curation import selector_training, topfactor
from curation.embeddings import ModelUnavailable, describe_model, embed_texts, load_nlp, model_info
from curation.models import CuratedImage, CurationChunk, CurationFigure, CurationRun, SelectorModel

log = logging.getLogger(__name__)

SELECTORS = ("paper", "learned")
# 5,000 rows per chunk: large enough that spaCy's nlp.pipe batches and one bulk insert amortise
# their overhead, small enough that 60k annotations make ~12 tasks that two workers share and a
# retried chunk redoes little work.
DEFAULT_CHUNK_SIZE = 5000
MAX_CHUNK_SIZE = 50_000


class RunNotReady(Exception):
    """Finalise was called while some chunks are still pending (a redelivered chunk raced the chord)."""


# --- start ----------------------------------------------------------------------------------
def _scope_image_ids(*, dataset: Dataset, campaign_id: int | None):
    if campaign_id is None:
        return None
    from django.apps import apps

    try:
        campaign_model = apps.get_model("annotator", "Campaign")
    except LookupError:
        raise DomainError("Campaigns are not available on this installation.", field="campaign_id")
    campaign = campaign_model.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} does not exist.", field="campaign_id")
    if getattr(campaign, "dataset_id", dataset.id) != dataset.id:
        raise DomainError(f"Campaign {campaign_id} belongs to another dataset.", field="campaign_id")
    # The annotator app's Campaign lists its images through CampaignItem rows (`items`).
    items = getattr(campaign, "items", None)
    if items is not None:
        return items.values("image_id")
    images = getattr(campaign, "images", None)
    if images is None:
        raise DomainError("This campaign model does not list its images.", field="campaign_id")
    return images.values("id")


def curation_start(
    *,
    dataset_slug: str,
    split: str = "",
    campaign_id: int | None = None,
    selector: str = "paper",
    text_field: str = topfactor.PAPER_DEFAULT_TEXT,
    factor_text: str = topfactor.PAPER_DEFAULT_FACTOR_TEXT,
    selector_model_id: int | None = None,
    learned_version: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    spacy_model: str | None = None,
    user=None,
    enqueue: bool = True,
) -> CurationRun:
    """Create a run over the final annotations of a dataset (or one split, or one campaign) and enqueue it.

    The final annotations are frozen into chunks here, in the same transaction as the run, so
    that the run's total is known at once and retried chunks see the same rows.
    """
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise NotFound(f"No dataset with slug {dataset_slug!r}.", field="dataset")
    if split and split not in Split.values:
        raise DomainError(f"split must be one of {list(Split.values)} or empty, not {split!r}.", field="split")
    if selector not in SELECTORS:
        raise DomainError(f"selector must be one of {list(SELECTORS)}, not {selector!r}.", field="selector")
    if text_field not in topfactor.TEXT_FIELDS:
        raise DomainError(f"text_field must be one of {list(topfactor.TEXT_FIELDS)}.", field="text_field")
    if factor_text not in topfactor.FACTOR_TEXTS:
        raise DomainError(f"factor_text must be one of {list(topfactor.FACTOR_TEXTS)}.", field="factor_text")
    if not (1 <= int(chunk_size) <= MAX_CHUNK_SIZE):
        raise DomainError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}.", field="chunk_size")
    model_row = None
    selector_version = topfactor.PAPER_SELECTOR_VERSION
    if selector == "learned":
        model_row, selector_version = _learned_model_row(selector_model_id, learned_version)
        text_field, factor_text = model_row.params["text_field"], model_row.params["factor_text"]
    spacy_name = spacy_model or settings.SPACY_MODEL
    try:
        info = describe_model(spacy_name)
    except ModelUnavailable as exc:
        raise DomainError(str(exc), field="spacy_model")
    image_ids = _scope_image_ids(dataset=dataset, campaign_id=campaign_id)

    with transaction.atomic():
        ids = list(
            final_annotations(dataset_id=dataset.id, split=split or None, image_ids=image_ids).values_list(
                "id", flat=True
            )
        )
        if not ids:
            scope = (
                f"campaign {campaign_id}"
                if campaign_id
                else f"dataset {dataset.slug}" + (f" ({split})" if split else "")
            )
            raise DomainError(
                f"Nothing to curate: {scope} has no final annotation yet (an accepted, adjudicated or imported one).",
                code="empty",
            )
        params = {
            "selector": selector,
            "selector_version": selector_version,
            "selector_model": {"id": model_row.id, "version": model_row.version, "sha256": model_row.sha256}
            if model_row
            else None,
            "spacy_model": spacy_name,
            "spacy_model_info": info,
            "text_field": text_field,
            "factor_text": factor_text,
            "factor_texts": {k: topfactor.factor_text(k, factor_text) for k in FACTOR_KEYS},
            "chunk_size": int(chunk_size),
        }
        run = CurationRun.objects.create(
            dataset=dataset,
            split=split,
            campaign_id=campaign_id,
            selector_model=model_row,
            params=params,
            total=len(ids),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        CurationChunk.objects.bulk_create(
            CurationChunk(
                run=run, index=i, annotation_ids=ids[lo : lo + chunk_size], size=len(ids[lo : lo + chunk_size])
            )
            for i, lo in enumerate(range(0, len(ids), chunk_size))
        )
        if enqueue:
            from curation.tasks import launch_run

            transaction.on_commit(lambda: launch_run(run.id))
    return run


def _learned_model_row(selector_model_id: int | None, learned_version: str | None) -> tuple[SelectorModel, str]:
    """The stored model a learned run uses: the one named, else the latest of the version asked
    for (default: selector_training.DEFAULT_LEARNED_VERSION)."""
    version = learned_version or selector_training.DEFAULT_LEARNED_VERSION
    if version not in selector_training.LEARNED_VERSIONS:
        raise DomainError(
            f"learned_version must be one of {list(selector_training.LEARNED_VERSIONS)}, not {version!r}.",
            field="learned_version",
        )
    qs = SelectorModel.objects.filter(name__in=selector_training.MODEL_NAMES.values())
    if selector_model_id:
        row = qs.filter(pk=selector_model_id).first()
        if row is None:
            raise NotFound(f"No learned selector model {selector_model_id}.", field="selector_model_id")
        return row, selector_training.version_of(row)
    row = qs.filter(name=selector_training.MODEL_NAMES[version]).order_by("-version").first()
    if row is None:
        raise DomainError(
            f"No {version} selector is trained yet: train one first "
            f"(manage.py curate --train-learned --learned-version {version} <dataset>).",
            field="selector_model_id",
        )
    return row, version


def curation_run_execute(*, run_id: int) -> CurationRun:
    """Run every pending chunk and finalise in this process, without Celery.

    For the demo set-up and the naive/inline baselines; the same services the tasks call, so
    the results are the same as a run through workers.
    """
    for index in CurationChunk.objects.filter(run_id=run_id).exclude(status="done").values_list("index", flat=True):
        curation_chunk_process(run_id=run_id, index=index)
    return curation_finalise(run_id=run_id)


# --- chunks ---------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _factor_vectors(spacy_name: str, factor_text: str) -> np.ndarray:
    return topfactor.factor_vectors(load_nlp(spacy_name), factor_text)


@lru_cache(maxsize=4)
def _learned(path: str, sha256: str) -> topfactor.LearnedSelector:
    # Keyed by the file's hash too: a worker never reuses a stale model under a reused path.
    return topfactor.LearnedSelector.load(Path(settings.MEDIA_ROOT) / path)


def compute_chunk(
    *,
    params: dict,
    justifications: list[str],
    one_words: list[str],
    mask: np.ndarray,
    selector_model: SelectorModel | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top factor index per row (-1 = none) and whether each text had a vector."""
    nlp = load_nlp(params["spacy_model"])
    if params["selector"] == "learned" and params.get("selector_version") == selector_training.topfactor2.VERSION:
        model2 = selector_training.load_learned2(selector_model.path, selector_model.sha256)
        vj, vo = selector_training.topfactor2.embed_pair(nlp, justifications, one_words)
        has = (np.linalg.norm(vj, axis=1) > 0) | (np.linalg.norm(vo, axis=1) > 0)
        return model2.select(justifications, one_words, mask, vectors=(vj, vo)), has
    texts = [
        topfactor.annotation_text(j, o, params["text_field"]) for j, o in zip(justifications, one_words, strict=True)
    ]
    vecs, has = embed_texts(nlp, texts)
    fvecs = _factor_vectors(params["spacy_model"], params["factor_text"])
    if params["selector"] == "learned":
        model = _learned(selector_model.path, selector_model.sha256)
        return model.select(vecs, mask, fvecs), has
    return topfactor.paper_select(vecs, mask, fvecs), has


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
    """Insert result rows; on PostgreSQL with COPY (about 10x faster than a multi-row INSERT
    that Django builds and PostgreSQL parses for 25 columns x thousands of rows)."""
    if connection.vendor == "postgresql":
        table = CuratedImage._meta.db_table
        with connection.cursor() as cur:
            with cur.cursor.copy(f"COPY {table} ({', '.join(_RESULT_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    CuratedImage.objects.bulk_create(
        [CuratedImage(**dict(zip(_RESULT_COLUMNS, r, strict=True))) for r in rows], batch_size=500
    )


def curation_run_fail(*, run_id: int, reason: str, chunk_index: int | None = None) -> None:
    """Mark a run failed with its reason (a chunk's retries are exhausted, or finalise failed)."""
    with transaction.atomic():
        run = CurationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status == CurationRun.Status.DONE:
            return
        if chunk_index is not None:
            CurationChunk.objects.filter(run_id=run_id, index=chunk_index).exclude(status="done").update(
                status=CurationChunk.Status.FAILED, error=reason[:2000]
            )
        run.status = CurationRun.Status.FAILED
        run.error = (reason or "unknown error")[:4000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])


# --- finalise -------------------------------------------------------------------------------
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


def curation_run_restart(*, run_id: int) -> CurationRun:
    """Re-enqueue a failed or stuck run: chunks already done are kept, the others are redone."""
    with transaction.atomic():
        run = CurationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise NotFound(f"Curation run {run_id} does not exist.")
        if run.status == CurationRun.Status.DONE:
            raise Conflict(f"Curation run {run_id} is already done.")
        run.chunks.exclude(status=CurationChunk.Status.DONE).update(status=CurationChunk.Status.PENDING, error="")
        run.status = CurationRun.Status.RUNNING
        run.error = ""
        run.finished_at = None
        run.save(update_fields=["status", "error", "finished_at"])
        from curation.tasks import launch_run

        transaction.on_commit(lambda: launch_run(run.id))
    return run


# --- learned selector -----------------------------------------------------------------------
def selector_model_train(
    *,
    dataset_slug: str,
    text_field: str = topfactor.LEARNED_DEFAULT_TEXT,
    factor_text: str = topfactor.LEARNED_DEFAULT_FACTOR_TEXT,
    spacy_model: str | None = None,
    user=None,
) -> SelectorModel:
    """Train the learned selector on the TRAIN split's reference top factors, store it as a new version.

    Only the train split is read: the val split is kept for measuring agreement and is never
    used to fit or tune anything.
    """
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise NotFound(f"No dataset with slug {dataset_slug!r}.", field="dataset")
    if text_field not in topfactor.TEXT_FIELDS or factor_text not in topfactor.FACTOR_TEXTS:
        raise DomainError("Unknown text_field or factor_text.")
    rows = list(
        final_annotations(dataset_id=dataset.id, split=Split.TRAIN)
        .exclude(reference_top_factor="")
        .values_list("justification", "one_word", "reference_top_factor", *FACTOR_KEYS)
    )
    if len(rows) < 2:
        raise DomainError(
            f"Dataset {dataset_slug} has no train annotations with a reference top factor to learn from.", code="empty"
        )
    spacy_name = spacy_model or settings.SPACY_MODEL
    nlp = load_nlp(spacy_name)
    mask = np.array([r[3:] for r in rows], dtype=bool)
    top = np.array([FACTOR_KEYS.index(r[2]) for r in rows])
    vecs, _ = embed_texts(nlp, [topfactor.annotation_text(r[0], r[1], text_field) for r in rows])
    fvecs = topfactor.factor_vectors(nlp, factor_text)
    try:
        model = topfactor.LearnedSelector.train(vecs, mask, top, fvecs, factor_text=factor_text, text_field=text_field)
    except ValueError as exc:
        raise DomainError(f"Cannot train the learned selector: {exc}", code="empty")
    data = model.dumps()
    sha = topfactor.sha256_bytes(data)
    with transaction.atomic():
        last = SelectorModel.objects.select_for_update().filter(name="learned").order_by("-version").first()
        version = (last.version + 1) if last else 1
        rel = Path("curation") / "models" / f"learned-v{version}-{sha[:12]}.joblib"
        path = Path(settings.MEDIA_ROOT) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return SelectorModel.objects.create(
            name="learned",
            version=version,
            path=str(rel),
            sha256=sha,
            params={
                "dataset": dataset_slug,
                "split": "train",
                "text_field": text_field,
                "factor_text": factor_text,
                "spacy_model": spacy_name,
                "spacy_model_info": model_info(nlp),
                "estimator": "sklearn LogisticRegression(C=1.0, lbfgs, multinomial)",
                "features": "unit text vector (300) + factor mask (16) + masked cosine(text, factor) (16)",
                "selector_version": topfactor.LEARNED_SELECTOR_VERSION,
            },
            metrics=model.train_info,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )


# --- meta-labels ----------------------------------------------------------------------------
def image_class_meta_label_set(*, image_class_id: int, meta_label: str, user=None) -> ImageClass:
    """A maintainer corrects a class's meta-label (later curation runs use it)."""
    if meta_label not in META_LABELS:
        raise DomainError(f"meta_label must be one of {list(META_LABELS)}, not {meta_label!r}.", field="meta_label")
    with transaction.atomic():
        cls = ImageClass.objects.select_for_update().filter(pk=image_class_id).first()
        if cls is None:
            raise NotFound(f"Class {image_class_id} does not exist.")
        cls.meta_label = meta_label
        cls.meta_label_source = "maintainer"
        cls.save(update_fields=["meta_label", "meta_label_source"])
    return cls


def image_classes_meta_labels_derive(*, dataset_slug: str) -> int | None:
    """Set meta-labels from WordNet hypernyms for classes not corrected by a maintainer.

    Returns the number of classes updated, or None when WordNet data is not installed.
    """
    from curation.metalabels import derive_meta_labels

    classes = list(
        ImageClass.objects.filter(dataset__slug=dataset_slug).exclude(wnid="").exclude(meta_label_source="maintainer")
    )
    derived = derive_meta_labels([c.wnid for c in classes])
    if derived is None:
        return None
    changed = [c for c in classes if derived[c.wnid] != c.meta_label]
    for c in changed:
        c.meta_label, c.meta_label_source = derived[c.wnid], "wordnet"
    ImageClass.objects.bulk_update(changed, ["meta_label", "meta_label_source"])
    return len(changed)
