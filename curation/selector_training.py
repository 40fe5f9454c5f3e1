"""Writes and reads around the learned-2 selector: its training sources, training, loading, and the
held-out agreement a run reports. The model itself (Django-free) is curation/topfactor2.py.

Training sources (rows of the TRAIN split only; val is where agreement is measured):
- "published": the reference top factor an imported release ships (ImageNet-X's train file);
- further sources (annotators' main factors, reviewers' corrections of a top factor) plug in as
  functions in TRAINING_SOURCES returning topfactor2.LabelledRows, or are passed to
  selector_model_train_learned2(extra_rows=...). Sources are merged per image, later ones winning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset, Split
from curation import topfactor, topfactor2
from curation.agreement import agreement_summary
from curation.models import SelectorModel
from infra.embeddings import load_nlp, model_info
from infra.errors import DomainError, NotFound
from review.selectors import final_annotations

# SelectorModel.name per learned selector version (learned-1 rows predate versions in names).
MODEL_NAMES = {topfactor.LEARNED_SELECTOR_VERSION: "learned", topfactor2.VERSION: topfactor2.VERSION}
LEARNED_VERSIONS = tuple(MODEL_NAMES)
# learned-2 beat learned-1 on 5-fold cross-validation on ImageNet-X train (bench/results/selector.json),
# so a learned run uses it unless told otherwise.
DEFAULT_LEARNED_VERSION = topfactor2.VERSION


def version_of(model_row: SelectorModel) -> str:
    return model_row.params.get("selector_version") or topfactor.LEARNED_SELECTOR_VERSION


# --- training sources -----------------------------------------------------------------------
def published_train_rows(dataset: Dataset) -> topfactor2.LabelledRows:
    """The release's published top factors of the dataset's TRAIN split (final annotations)."""
    rows = list(
        final_annotations(dataset_id=dataset.id, split=Split.TRAIN)
        .exclude(reference_top_factor="")
        .order_by("image_id")
        .values_list("image_id", "image__split", "justification", "one_word", "reference_top_factor", *FACTOR_KEYS)
    )
    return topfactor2.LabelledRows(
        justifications=[r[2] or "" for r in rows],
        one_words=[r[3] or "" for r in rows],
        mask=np.array([r[5:] for r in rows], dtype=bool).reshape(len(rows), len(FACTOR_KEYS)),
        label=np.array([FACTOR_KEYS.index(r[4]) for r in rows], dtype=np.int64),
        splits=[r[1] for r in rows],
        sources=["published"] * len(rows),
        image_ids=[r[0] for r in rows],
    )


TRAINING_SOURCES: dict[str, Callable[[Dataset], topfactor2.LabelledRows]] = {"published": published_train_rows}


def training_rows(
    *, dataset: Dataset, sources: Sequence[str], extra_rows: Sequence[topfactor2.LabelledRows] = ()
) -> topfactor2.LabelledRows:
    unknown = [s for s in sources if s not in TRAINING_SOURCES]
    if unknown:
        raise DomainError(f"unknown training source(s) {unknown}; known: {sorted(TRAINING_SOURCES)}", field="sources")
    return topfactor2.LabelledRows.concat([TRAINING_SOURCES[s](dataset) for s in sources] + list(extra_rows))


# --- training -----------------------------------------------------------------------------------
def selector_model_train_learned2(
    *,
    dataset_slug: str,
    sources: Sequence[str] = ("published",),
    extra_rows: Sequence[topfactor2.LabelledRows] = (),
    config: topfactor2.Config | None = None,
    spacy_model: str | None = None,
    user=None,
) -> SelectorModel:
    """Train learned-2 on the dataset's TRAIN rows of the given sources and store it as a new version.

    Rows of any other split are refused (topfactor2.check_trainable), whether they come from a
    source here or from extra_rows: nothing from val reaches the model.
    """
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise NotFound(f"No dataset with slug {dataset_slug!r}.", field="dataset")
    rows = training_rows(dataset=dataset, sources=sources, extra_rows=extra_rows)
    if len(rows) < 2:
        raise DomainError(
            f"Dataset {dataset_slug} has no train annotations with a top factor to learn from.", code="empty"
        )
    spacy_name = spacy_model or settings.SPACY_MODEL
    nlp = load_nlp(spacy_name)
    fvecs = topfactor.factor_vectors(nlp, "wording")
    try:
        model = topfactor2.TextSelector.train(rows, factor_vecs=fvecs, nlp=nlp, config=config)
    except topfactor2.NotTrainable as exc:
        raise DomainError(f"Cannot train the {topfactor2.VERSION} selector: {exc}", code="empty")
    trained_ids = np.array(
        [i for i, ok in zip(rows.image_ids or [], rows.usable(), strict=False) if ok], dtype=np.int64
    )
    data = model.dumps()
    sha = topfactor2.sha256_bytes(data)
    name = MODEL_NAMES[topfactor2.VERSION]
    with transaction.atomic():
        last = SelectorModel.objects.select_for_update().filter(name=name).order_by("-version").first()
        version = (last.version + 1) if last else 1
        rel = Path("curation") / "models" / f"{name}-v{version}-{sha[:12]}.npz"
        ids_rel = rel.with_suffix(".train-images.npy")
        folder = Path(settings.MEDIA_ROOT) / rel.parent
        folder.mkdir(parents=True, exist_ok=True)
        (Path(settings.MEDIA_ROOT) / rel).write_bytes(data)
        np.save(Path(settings.MEDIA_ROOT) / ids_rel, trained_ids, allow_pickle=False)
        return SelectorModel.objects.create(
            name=name,
            version=version,
            path=str(rel),
            sha256=sha,
            params={
                "dataset": dataset_slug,
                "split": "train",
                "trained_on": {
                    "dataset": dataset_slug,
                    "splits": model.train_info["splits"],
                    "images": int(len(trained_ids)),
                    "sources": model.train_info["sources"],
                    "image_ids_file": str(ids_rel),
                },
                "text_field": "justification and one_word, separately",
                "factor_text": "wording",
                "spacy_model": spacy_name,
                "spacy_model_info": model_info(nlp),
                "estimator": f"sklearn LogisticRegression(C={model.config.C}, lbfgs, multinomial)",
                "features": model.config.describe(),
                "selector_version": topfactor2.VERSION,
            },
            metrics=model.train_info,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )


# --- loading ------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_learned2(path: str, sha256: str) -> topfactor2.TextSelector:
    """The stored model, checked against its recorded sha256 (keyed by it: a reused path never serves a stale model)."""
    return topfactor2.TextSelector.loads((Path(settings.MEDIA_ROOT) / path).read_bytes(), sha256=sha256)


def trained_image_ids(model_row: SelectorModel | None) -> set[int]:
    if model_row is None:
        return set()
    rel = (model_row.params.get("trained_on") or {}).get("image_ids_file")
    if not rel:
        return set()
    return set(np.load(Path(settings.MEDIA_ROOT) / rel, allow_pickle=False).tolist())


# --- held-out agreement (run page) ------------------------------------------------------------
def held_out_agreement(*, df, model_row: SelectorModel | None, params: dict, dataset_slug: str) -> dict | None:
    """Agreement with the published top factors on the run's images the selector never learned from.

    `df` is services.results_frame(run) plus `image_id`. An image is held out unless its split is
    one the selector was trained on, or it is one of the trained images (the paper rule learns
    nothing, so all its images are held out). Only images with 2+ selected factors and a published
    top factor count. None when the run has no such image at all.
    """
    n_sel = df[list(FACTOR_KEYS)].sum(axis=1).to_numpy()
    ref_keys = df["reference_top_factor"].to_numpy()
    has_ref = (ref_keys != "") & (n_sel >= 2)
    if not has_ref.any():
        return None
    if params.get("selector") == "learned" and model_row is not None:
        trained_on = model_row.params.get("trained_on") or {  # learned-1 rows record less
            "dataset": model_row.params.get("dataset"),
            "splits": [model_row.params.get("split", "train")],
            "images": model_row.metrics.get("n_train"),
        }
        splits = set(trained_on.get("splits") or [])
        ids = trained_image_ids(model_row)
        same_dataset = trained_on.get("dataset") in (None, dataset_slug)
        trained = df["image_id"].isin(ids).to_numpy()
        if same_dataset:
            trained = trained | df["split"].isin(splits).to_numpy()
        rule = (
            f"left out: images of split(s) {sorted(splits)} of dataset {trained_on.get('dataset')} "
            "and the images the selector was trained on"
        )
    else:
        trained_on = None
        trained = np.zeros(len(df), dtype=bool)
        rule = "the paper rule learns from no image: every image is held out"
    index = {k: i for i, k in enumerate(FACTOR_KEYS)}
    ref = np.array([index.get(k, -1) for k in ref_keys])
    pred = np.array([index.get(k, -1) for k in df["top_factor"].to_numpy()])
    mask = df[list(FACTOR_KEYS)].to_numpy(dtype=bool)
    keep = ~trained
    held = agreement_summary(pred[keep], ref[keep], mask[keep])
    return {
        **held,
        "scope": "held-out images with two or more selected factors",
        # Where the id file lies is the server's business, not the datasheet's.
        "trained_on": {k: v for k, v in trained_on.items() if k != "image_ids_file"} if trained_on else None,
        "images_left_out": int((trained & has_ref).sum()),
        "rule": rule,
    }
