"""Streaming per-class top-k: k entries per class whatever the number of images, merged exactly
across shards, JSON-safe for the shard rows."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prototypes.engine.errors import EngineError

DEFAULT_K = 3  # three prototypes per class (ImageNet-X)


@dataclass(frozen=True)
class Entry:
    """A candidate prototype. Ranked by score (descending), ties by key (ascending)."""

    score: float
    key: str
    prob: float  # predicted probability (== score for correct entries)
    true_prob: float
    predicted: int

    def __lt__(self, other: Entry) -> bool:
        # "Worse than": the min-heap keeps the worst candidate on top, ready to be evicted.
        if self.score != other.score:
            return self.score < other.score
        return self.key > other.key

    def to_list(self) -> list:
        return [self.score, self.key, self.prob, self.true_prob, self.predicted]

    @classmethod
    def from_list(cls, v: list) -> Entry:
        return cls(float(v[0]), str(v[1]), float(v[2]), float(v[3]), int(v[4]))


class _TopK:
    __slots__ = ("k", "heap")

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[Entry] = []

    def push(self, e: Entry) -> None:
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, e)
        elif self.heap[0] < e:
            heapq.heapreplace(self.heap, e)

    def best_first(self) -> list[Entry]:
        return sorted(self.heap, reverse=True)


@dataclass
class TopKState:
    """Per class: top-k correct images by predicted probability, top-k incorrect by true-class
    probability (for --fill-incorrect), and counts. JSON-safe via to_dict; merging two states
    is exact because the top-k of a union is contained in the union of the top-ks."""

    k: int = DEFAULT_K
    correct: dict[int, _TopK] = field(default_factory=dict)
    incorrect: dict[int, _TopK] = field(default_factory=dict)
    scored: Counter = field(default_factory=Counter)
    n_correct: Counter = field(default_factory=Counter)

    def add(self, key: str, label: int, predicted: int, prob: float, true_prob: float) -> None:
        self.scored[label] += 1
        if predicted == label:
            self.n_correct[label] += 1
            self.correct.setdefault(label, _TopK(self.k)).push(Entry(prob, key, prob, true_prob, predicted))
        else:
            self.incorrect.setdefault(label, _TopK(self.k)).push(Entry(true_prob, key, prob, true_prob, predicted))

    def merge(self, other: TopKState) -> TopKState:
        if other.k != self.k:
            raise EngineError(f"cannot merge top-{other.k} into top-{self.k}")
        for src, dst in ((other.correct, self.correct), (other.incorrect, self.incorrect)):
            for label, tk in src.items():
                mine = dst.setdefault(label, _TopK(self.k))
                for e in tk.heap:
                    mine.push(e)
        self.scored.update(other.scored)
        self.n_correct.update(other.n_correct)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "correct": {str(c): [e.to_list() for e in tk.best_first()] for c, tk in self.correct.items()},
            "incorrect": {str(c): [e.to_list() for e in tk.best_first()] for c, tk in self.incorrect.items()},
            "scored": {str(c): n for c, n in self.scored.items()},
            "n_correct": {str(c): n for c, n in self.n_correct.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TopKState:
        s = cls(k=int(d["k"]))
        for name in ("correct", "incorrect"):
            target = getattr(s, name)
            for c, entries in d[name].items():
                tk = target.setdefault(int(c), _TopK(s.k))
                for v in entries:
                    tk.push(Entry.from_list(v))
        s.scored = Counter({int(c): int(n) for c, n in d["scored"].items()})
        s.n_correct = Counter({int(c): int(n) for c, n in d["n_correct"].items()})
        return s

    def select(self, *, fill_incorrect: bool = False) -> dict[int, list[Selected]]:
        """The paper's rule: per class the k correct images with the highest predicted
        probability (ties by file name). Short classes are filled from the incorrect images
        with the highest true-class probability only when asked, and marked `filled`."""
        out: dict[int, list[Selected]] = {}
        for label in sorted(set(self.scored)):
            chosen = [
                Selected(e.key, e.prob, e.true_prob, e.predicted, False)
                for e in (self.correct[label].best_first() if label in self.correct else [])
            ]
            if fill_incorrect and len(chosen) < self.k and label in self.incorrect:
                for e in self.incorrect[label].best_first()[: self.k - len(chosen)]:
                    chosen.append(Selected(e.key, e.prob, e.true_prob, e.predicted, True))
            out[label] = chosen
        return out

    def short_classes(self) -> dict[int, int]:
        """Classes with fewer than k correctly classified images: {class: correct count}."""
        return {c: self.n_correct.get(c, 0) for c in self.scored if self.n_correct.get(c, 0) < self.k}


@dataclass(frozen=True)
class Selected:
    key: str
    prob: float
    true_prob: float
    predicted: int
    filled: bool
