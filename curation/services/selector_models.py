"""Top-factor selectors: which ones exist, how a run picks one, how one is applied, and the learned model.

This is the one place that maps a selector's name to its implementation (`SELECTORS`,
`selector_params`, `select_top_factors`); a new selector is added here and nowhere else in the
services. The maths lives in curation/topfactor.py (no Django); this module adds the stored
model rows (SelectorModel) and the per-process caches.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.factors import FACTOR_KEYS
from catalog.models import Dataset, Split
from curation import selector_training, topfactor
from curation.models import SelectorModel
from infra.embeddings import embed_texts, load_nlp, model_info
from infra.errors import Conflict, DomainError, NotFound
from review.selectors import final_annotations

SELECTORS = ("paper", "learned")

# Version of each selector's rule, recorded in a run's params (a changed rule gets a new version).
_SELECTOR_VERSIONS = {
    "paper": topfactor.PAPER_SELECTOR_VERSION,
    "learned": topfactor.LEARNED_SELECTOR_VERSION,
}


def selector_params(
    *,
    selector: str,
    text_field: str,
    factor_text: str,
    selector_model_id: int | None,
    learned_version: str | None = None,
) -> tuple[SelectorModel | None, str, str, dict]:
    """Check a run's selector choice; returns (stored model or None, text_field, factor_text, params).

    A learned selector brings its own texts (those it was trained with), which replace the
    ones asked for; `params` is what the run records about the selector.
    """
    if selector not in SELECTORS:
        raise DomainError(f"selector must be one of {list(SELECTORS)}, not {selector!r}.", field="selector")
    model_row = None
    version = _SELECTOR_VERSIONS[selector]
    if selector == "learned":
        model_row, version = _learned_model_row(selector_model_id, learned_version)
        text_field, factor_text = model_row.params["text_field"], model_row.params["factor_text"]
    params = {
        "selector": selector,
        "selector_version": version,
        "selector_model": {"id": model_row.id, "version": model_row.version, "sha256": model_row.sha256}
        if model_row
        else None,
    }
    return model_row, text_field, factor_text, params


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
        # A state of the platform, not bad input: 409.
        raise Conflict(
            f"No {version} selector is trained yet: train one first "
            f"(manage.py curate --train-learned --learned-version {version} <dataset>).",
            field="selector_model_id",
            code="no_learned_selector",
        )
    return row, version


def reads_texts_apart(params: dict) -> bool:
    """learned-2 embeds the justification and the one-word summary separately (select_learned2)."""
    return params["selector"] == "learned" and params.get("selector_version") == selector_training.topfactor2.VERSION


def select_learned2(
    *, params: dict, justifications: list[str], one_words: list[str], mask: np.ndarray, selector_model: SelectorModel
) -> tuple[np.ndarray, np.ndarray]:
    """Top factor index per row with learned-2, and whether either text had a vector."""
    model = selector_training.load_learned2(selector_model.path, selector_model.sha256)
    vj, vo = selector_training.topfactor2.embed_pair(load_nlp(params["spacy_model"]), justifications, one_words)
    has = (np.linalg.norm(vj, axis=1) > 0) | (np.linalg.norm(vo, axis=1) > 0)
    return model.select(justifications, one_words, mask, vectors=(vj, vo)), has


@lru_cache(maxsize=4)
def _factor_vectors(spacy_name: str, factor_text: str) -> np.ndarray:
    return topfactor.factor_vectors(load_nlp(spacy_name), factor_text)


@lru_cache(maxsize=4)
def _learned(path: str, sha256: str) -> topfactor.LearnedSelector:
    # Keyed by the file's hash too: a worker never reuses a stale model under a reused path.
    return topfactor.LearnedSelector.load(Path(settings.MEDIA_ROOT) / path)


def select_top_factors(
    *, params: dict, vecs: np.ndarray, mask: np.ndarray, selector_model: SelectorModel | None
) -> np.ndarray:
    """Top factor index per row (-1 = none) with the run's selector (params["selector"])."""
    fvecs = _factor_vectors(params["spacy_model"], params["factor_text"])
    if params["selector"] == "learned":
        model = _learned(selector_model.path, selector_model.sha256)
        return model.select(vecs, mask, fvecs)
    return topfactor.paper_select(vecs, mask, fvecs)


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
