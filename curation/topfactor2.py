"""The second learned top-factor selector ("learned-2"): the two texts read separately. No Django imports.

What it sees per image (the justification and the one-word summary are kept apart, because
the summary often *is* the answer: "snow" -> background, "sketch" -> style):
- the spaCy mean vector of each text (unit length), 2 x 300;
- TF-IDF of each text's words and word bigrams, and of the character 2-5-grams of both texts
  together (robust to the typos and word forms of free text: "drak", "darkened"); vocabularies
  fitted on the training rows;
- the factor mask, and the cosine of each text with each selected factor's wording (the paper's
  signal, so the model can lean on it where the words are rare).
A multinomial logistic regression scores the 16 factors and the best-scoring *selected* factor
is the top factor. The features and C were chosen only by cross-validation on the ImageNet-X
train split (bench/selector.py prints that search); val is never used to fit or choose. On val
(42,097 images with 2+ factors) it agrees with the published top factor on 85.8 % (learned-1:
78.7 %, the paper rule: 48.3 %).

Training takes plain rows (texts, mask, label, split, source) so that any labelled source can
feed it: the published train top factors, annotators' main factors, reviewers' corrections. It
refuses rows from any split but train (`TRAINABLE_SPLITS`): val is where agreement is measured.

Persistence never unpickles: the model is a NumPy .npz (coefficients, idf weights) plus JSON
(vocabularies, settings) read with allow_pickle=False, and checked against its sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import sparse

from catalog.factors import FACTOR_KEYS
from infra.embeddings import cosine_matrix, embed_texts

VERSION = "learned-2"
N_FACTORS = len(FACTOR_KEYS)
NO_FACTOR = -1
# The only split a selector may learn from. Val is where the agreement with the published top
# factors is measured; a row from it in training would make that figure a training score.
TRAINABLE_SPLITS = frozenset({"train"})
FORMAT = "fov-topfactor-learned-2/1"
# A factor never seen as a top factor in training gets this score: it is chosen only when no
# selected factor was seen, and then the first selected one in form order (finite, so a row
# whose selected factors are all unseen still picks a selected one).
_UNSEEN = -1e9


class NotTrainable(ValueError):
    """Training rows that must not be learned from (a held-out split, no usable label...)."""


@dataclass(frozen=True)
class Config:
    """The settings cross-validation chooses among (defaults = the choice made on train; see bench/selector.py)."""

    # C = 10 had the best 3-fold CV agreement on train (83.96 %, C = 3: 83.91 %, without the
    # character n-grams: 82.75 %; learned-1: 76.64 %), bench/results/selector.json.
    C: float = 10.0
    ngram_max: int = 2
    min_df: int = 2
    vectors: bool = True
    cosines: bool = True
    tfidf: bool = True
    chars: bool = True
    char_min_df: int = 2

    def describe(self) -> str:
        parts = ["factor mask (16)"]
        if self.vectors:
            parts.insert(0, "unit spaCy vector of the justification and of the one-word summary (2 x 300)")
        if self.cosines:
            parts.append("cosine of each text with each selected factor's wording (2 x 16)")
        if self.tfidf:
            parts.append(
                f"TF-IDF of each text's word 1-{self.ngram_max}-grams (min_df {self.min_df}, sublinear tf, "
                "vocabularies from the training rows)"
            )
        if self.chars:
            parts.append(f"TF-IDF of the character 2-5-grams of both texts (min_df {self.char_min_df}, sublinear tf)")
        return "; ".join(parts)


@dataclass
class LabelledRows:
    """Training rows from one or several sources, in a plain form: texts, mask, label, split, source."""

    justifications: list[str]
    one_words: list[str]
    mask: np.ndarray  # bool [n, 16]
    label: np.ndarray  # int [n], factor index of the top factor
    splits: list[str]
    sources: list[str]
    image_ids: list[int] | None = None

    def __post_init__(self) -> None:
        n = len(self.justifications)
        self.mask = np.asarray(self.mask, dtype=bool).reshape(n, N_FACTORS)
        self.label = np.asarray(self.label, dtype=np.int64).reshape(n)
        if not (len(self.one_words) == len(self.splits) == len(self.sources) == n):
            raise ValueError("every column of the training rows must have one entry per row")
        if self.image_ids is not None and len(self.image_ids) != n:
            raise ValueError("image_ids must have one entry per row")

    def __len__(self) -> int:
        return len(self.justifications)

    @classmethod
    def concat(cls, parts: Sequence[LabelledRows]) -> LabelledRows:
        """Several sources as one training set; where an image appears twice the later source wins
        (pass sources from the least to the most trusted, e.g. published, then reviewers' corrections)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls([], [], np.zeros((0, N_FACTORS), bool), np.zeros(0, np.int64), [], [], [])
        with_ids = all(p.image_ids is not None for p in parts)
        rows: dict = {}
        for p in parts:
            for i in range(len(p)):
                key = p.image_ids[i] if with_ids else (id(p), i)
                rows[key] = (p, i)
        order = list(rows.values())
        return cls(
            justifications=[p.justifications[i] for p, i in order],
            one_words=[p.one_words[i] for p, i in order],
            mask=np.array([p.mask[i] for p, i in order]).reshape(len(order), N_FACTORS),
            label=np.array([p.label[i] for p, i in order], dtype=np.int64),
            splits=[p.splits[i] for p, i in order],
            sources=[p.sources[i] for p, i in order],
            image_ids=[p.image_ids[i] for p, i in order] if with_ids else None,
        )

    def subset(self, idx: np.ndarray) -> LabelledRows:
        idx = np.asarray(idx, dtype=np.int64)
        return LabelledRows(
            justifications=[self.justifications[i] for i in idx],
            one_words=[self.one_words[i] for i in idx],
            mask=self.mask[idx],
            label=self.label[idx],
            splits=[self.splits[i] for i in idx],
            sources=[self.sources[i] for i in idx],
            image_ids=[self.image_ids[i] for i in idx] if self.image_ids is not None else None,
        )

    def usable(self) -> np.ndarray:
        """Rows whose label is one of their selected factors (the others teach nothing about choosing)."""
        ok = (self.label >= 0) & (self.label < N_FACTORS)
        ok[ok] &= self.mask[np.nonzero(ok)[0], self.label[ok]]
        return ok


def check_trainable(splits: Sequence[str]) -> None:
    """Refuse rows from any split a selector may not learn from (val above all)."""
    bad = sorted({s for s in splits if s not in TRAINABLE_SPLITS})
    if bad:
        n = sum(1 for s in splits if s not in TRAINABLE_SPLITS)
        raise NotTrainable(
            f"{n} training row(s) come from split(s) {bad}: a selector learns only from {sorted(TRAINABLE_SPLITS)} "
            "(val is held out to measure agreement)"
        )


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


def _tfidf(config: Config):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, config.ngram_max), min_df=config.min_df, sublinear_tf=True, dtype=np.float32)


def _char_tfidf(config: Config):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), min_df=config.char_min_df, sublinear_tf=True, dtype=np.float32
    )


def _both(justifications, one_words) -> list[str]:
    return [f"{j or ''} {o or ''}".strip() for j, o in zip(justifications, one_words, strict=True)]


def _restore_tfidf(config: Config, vocabulary: dict[str, int], idf: np.ndarray, *, chars: bool = False):
    vec = _char_tfidf(config) if chars else _tfidf(config)
    vec.set_params(vocabulary=vocabulary)
    vec.idf_ = idf  # sklearn's setter validates the vocabulary and builds the transformer
    return vec


@dataclass
class TextSelector:
    """learned-2: a fitted featuriser (two TF-IDF vocabularies) and a linear scorer over the 16 factors."""

    config: Config
    coef: np.ndarray  # float [16, d]; rows of factors never seen in training are zero
    intercept: np.ndarray  # float [16]
    seen: np.ndarray  # bool [16]: factor was a top factor in training
    vocab_j: dict[str, int]
    vocab_o: dict[str, int]
    idf_j: np.ndarray
    idf_o: np.ndarray
    vocab_c: dict[str, int]
    idf_c: np.ndarray
    factor_vecs: np.ndarray  # [16, 300], the factor wordings' vectors used for the cosines
    version: str = VERSION
    train_info: dict = field(default_factory=dict)
    _vec_j: object = field(default=None, repr=False, compare=False)
    _vec_o: object = field(default=None, repr=False, compare=False)
    _vec_c: object = field(default=None, repr=False, compare=False)

    # --- features -----------------------------------------------------------------------
    def _vectorisers(self):
        if self.config.tfidf and self._vec_j is None:
            self._vec_j = _restore_tfidf(self.config, self.vocab_j, self.idf_j)
            self._vec_o = _restore_tfidf(self.config, self.vocab_o, self.idf_o)
        if self.config.chars and self._vec_c is None:
            self._vec_c = _restore_tfidf(self.config, self.vocab_c, self.idf_c, chars=True)
        return self._vec_j, self._vec_o, self._vec_c

    def features(self, justifications, one_words, mask, vj, vo) -> sparse.csr_matrix:
        return _features(self.config, self._vectorisers(), justifications, one_words, mask, vj, vo, self.factor_vecs)

    # --- use ------------------------------------------------------------------------------
    def scores(self, x: sparse.csr_matrix) -> np.ndarray:
        s = np.asarray(x @ self.coef.T) + self.intercept
        s[:, ~self.seen] = _UNSEEN
        return s

    def select(
        self,
        justifications: Sequence[str],
        one_words: Sequence[str],
        mask: np.ndarray,
        *,
        nlp=None,
        vectors: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Top factor index per row (-1 where nothing is selected), among the selected factors only."""
        mask = np.asarray(mask, dtype=bool).reshape(len(justifications), N_FACTORS)
        vj, vo = vectors if vectors is not None else embed_pair(nlp, justifications, one_words)
        x = self.features(justifications, one_words, mask, vj, vo)
        return masked_argmax(self.scores(x), mask)

    # --- training ---------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        rows: LabelledRows,
        *,
        factor_vecs: np.ndarray,
        nlp=None,
        vectors: tuple[np.ndarray, np.ndarray] | None = None,
        config: Config | None = None,
    ) -> TextSelector:
        """Fit on rows of the train split only (anything else is refused, see check_trainable).

        Rows whose label is not among their selected factors are skipped (counted in train_info).
        `vectors` (the two texts' spaCy vectors, as embed_pair returns) saves re-embedding in CV.
        """
        from sklearn.linear_model import LogisticRegression

        config = config or Config()
        check_trainable(rows.splits)
        t0 = time.perf_counter()
        ok = rows.usable()
        if ok.sum() < 2 or len(np.unique(rows.label[ok])) < 2:
            raise NotTrainable(
                "need at least two training rows with two different top factors among their selected ones"
            )
        vj, vo = vectors if vectors is not None else embed_pair(nlp, rows.justifications, rows.one_words)
        idx = np.nonzero(ok)[0]
        sub = rows.subset(idx)
        vj, vo = vj[idx], vo[idx]
        vecs = [None, None, None]
        vocab_j: dict[str, int] = {}
        vocab_o: dict[str, int] = {}
        vocab_c: dict[str, int] = {}
        idf_j = idf_o = idf_c = np.zeros(0, dtype=np.float32)
        if config.tfidf:
            vecs[:2] = _fit_tfidf(config, sub.justifications), _fit_tfidf(config, sub.one_words)
            vocab_j = {k: int(v) for k, v in vecs[0].vocabulary_.items()}
            vocab_o = {k: int(v) for k, v in vecs[1].vocabulary_.items()}
            idf_j, idf_o = vecs[0].idf_.astype(np.float32), vecs[1].idf_.astype(np.float32)
        if config.chars:
            vecs[2] = _fit_tfidf(config, _both(sub.justifications, sub.one_words), chars=True)
            vocab_c = {k: int(v) for k, v in vecs[2].vocabulary_.items()}
            idf_c = vecs[2].idf_.astype(np.float32)
        x = _features(config, vecs, sub.justifications, sub.one_words, sub.mask, vj, vo, factor_vecs)
        model = LogisticRegression(C=config.C, max_iter=3000)
        model.fit(x, sub.label)
        coef = np.zeros((N_FACTORS, x.shape[1]), dtype=np.float64)
        intercept = np.zeros(N_FACTORS, dtype=np.float64)
        seen = np.zeros(N_FACTORS, dtype=bool)
        classes = np.asarray(model.classes_, dtype=np.int64)
        if len(classes) == 2:  # sklearn's binary case: one row of weights for class 1 vs class 0
            coef[classes[1]], intercept[classes[1]] = model.coef_[0], model.intercept_[0]
        else:
            coef[classes], intercept[classes] = model.coef_, model.intercept_
        seen[classes] = True
        selector = cls(
            config=config,
            coef=coef,
            intercept=intercept,
            seen=seen,
            vocab_j=vocab_j,
            vocab_o=vocab_o,
            idf_j=idf_j,
            idf_o=idf_o,
            vocab_c=vocab_c,
            idf_c=idf_c,
            factor_vecs=np.asarray(factor_vecs, dtype=np.float32),
        )
        selector._vec_j, selector._vec_o, selector._vec_c = vecs
        pred = masked_argmax(selector.scores(x), sub.mask)
        sources: dict[str, int] = {}
        for s in sub.sources:
            sources[s] = sources.get(s, 0) + 1
        selector.train_info = {
            "n_train": int(ok.sum()),
            "n_skipped": int((~ok).sum()),
            "splits": sorted(set(sub.splits)),
            "sources": sources,
            "features": x.shape[1],
            "train_accuracy": float((pred == sub.label).mean()),
            "seconds": round(time.perf_counter() - t0, 2),
            "config": asdict(config),
        }
        return selector

    # --- persistence ----------------------------------------------------------------------------
    def dumps(self) -> bytes:
        """The model as .npz bytes: arrays plus one JSON document; nothing that needs unpickling."""
        meta = {
            "format": FORMAT,
            "version": self.version,
            "config": asdict(self.config),
            "vocab_j": self.vocab_j,
            "vocab_o": self.vocab_o,
            "vocab_c": self.vocab_c,
            "train_info": self.train_info,
        }
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8),
            coef=self.coef.astype(np.float32),
            intercept=self.intercept.astype(np.float64),
            seen=self.seen,
            idf_j=self.idf_j,
            idf_o=self.idf_o,
            idf_c=self.idf_c,
            factor_vecs=self.factor_vecs,
        )
        return buf.getvalue()

    @classmethod
    def loads(cls, data: bytes, *, sha256: str | None = None) -> TextSelector:
        """Read dumps() output; refuses bytes whose sha256 differs from the one recorded, and any pickle."""
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("the selector model's file does not match its recorded sha256")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != FORMAT:
                raise ValueError(f"not a {VERSION} selector model (format {meta.get('format')!r})")
            return cls(
                config=Config(**meta["config"]),
                coef=z["coef"].astype(np.float64),
                intercept=z["intercept"],
                seen=z["seen"].astype(bool),
                vocab_j={k: int(v) for k, v in meta["vocab_j"].items()},
                vocab_o={k: int(v) for k, v in meta["vocab_o"].items()},
                idf_j=z["idf_j"],
                idf_o=z["idf_o"],
                vocab_c={k: int(v) for k, v in meta["vocab_c"].items()},
                idf_c=z["idf_c"],
                factor_vecs=z["factor_vecs"],
                version=meta["version"],
                train_info=meta["train_info"],
            )


def _fit_tfidf(config: Config, texts: list[str], *, chars: bool = False):
    make = _char_tfidf if chars else _tfidf
    vec = make(config)
    try:
        vec.fit([t or "" for t in texts])
    except ValueError:  # no term reaches min_df (tiny training sets): fall back to every term
        vec = make(Config(**{**asdict(config), "min_df": 1, "char_min_df": 1}))
        try:
            vec.fit([t or "" for t in texts])
        except ValueError:  # no word at all
            vec.fit(["<empty>"])
    return vec


def _features(config: Config, vecs, justifications, one_words, mask, vj, vo, factor_vecs) -> sparse.csr_matrix:
    m = np.asarray(mask, dtype=np.float32)
    dense = [m]
    if config.vectors:
        dense = [_unit(vj), _unit(vo), m]
    if config.cosines:
        dense += [cosine_matrix(vj, factor_vecs) * m, cosine_matrix(vo, factor_vecs) * m]
    blocks = [sparse.csr_matrix(np.hstack(dense).astype(np.float32))]
    if config.tfidf:
        blocks += [
            vecs[0].transform([t or "" for t in justifications]).astype(np.float32),
            vecs[1].transform([t or "" for t in one_words]).astype(np.float32),
        ]
    if config.chars:
        blocks.append(vecs[2].transform(_both(justifications, one_words)).astype(np.float32))
    return sparse.hstack(blocks, format="csr")


def embed_pair(nlp, justifications: Sequence[str], one_words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """spaCy mean vectors of the justifications and of the one-word summaries."""
    if nlp is None:
        raise ValueError("pass a spaCy pipeline (nlp) or precomputed vectors")
    return embed_texts(nlp, list(justifications))[0], embed_texts(nlp, list(one_words))[0]


def masked_argmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Best-scoring selected factor per row (first in form order on ties); -1 where nothing is selected."""
    best = np.argmax(np.where(mask, scores, -np.inf), axis=1)
    best[~mask.any(axis=1)] = NO_FACTOR
    return best


def agreement_share(pred: np.ndarray, label: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """(agree, n) over rows with two or more selected factors and a label."""
    multi = (mask.sum(axis=1) >= 2) & (label >= 0)
    return int((pred[multi] == label[multi]).sum()), int(multi.sum())


def cross_validate(
    rows: LabelledRows,
    *,
    factor_vecs: np.ndarray,
    vectors: tuple[np.ndarray, np.ndarray],
    configs: Sequence[Config],
    folds: int = 5,
    seed: int = 0,
) -> list[dict]:
    """K-fold agreement (images with 2+ factors) of each config, on the given (train) rows only.

    The same folds for every config, so the comparison is paired; each fold refits the TF-IDF
    vocabularies on its own training part. Refuses held-out rows like train() does.
    """
    from sklearn.model_selection import KFold

    check_trainable(rows.splits)
    splits = list(KFold(folds, shuffle=True, random_state=seed).split(np.arange(len(rows))))
    out = []
    for config in configs:
        per_fold, agree_all, n_all, t0 = [], 0, 0, time.perf_counter()
        for tr, te in splits:
            model = TextSelector.train(
                rows.subset(tr), factor_vecs=factor_vecs, vectors=(vectors[0][tr], vectors[1][tr]), config=config
            )
            test = rows.subset(te)
            pred = model.select(
                test.justifications, test.one_words, test.mask, vectors=(vectors[0][te], vectors[1][te])
            )
            a, n = agreement_share(pred, test.label, test.mask)
            per_fold.append(a / n if n else None)
            agree_all, n_all = agree_all + a, n_all + n
        shares = [s for s in per_fold if s is not None]
        out.append(
            {
                "config": asdict(config),
                "folds": folds,
                "agree": agree_all,
                "images_multi_factor": n_all,
                "share": agree_all / n_all if n_all else None,
                "fold_shares": per_fold,
                "fold_std": float(np.std(shares)) if shares else None,
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
