"""Meta-labels of classes (the paper's 17). No Django imports.

The ImageNet-X release ships a class -> metaclass mapping that was derived from WordNet; the
catalogue imports it into ImageClass.meta_label. For other datasets, where NLTK's WordNet data
is installed, `derive_from_hypernyms` computes the same kind of label from hypernym paths.
WordNet's data is not installable from the registries on this machine, so `wordnet_hypernym_paths`
says so (returns None) instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from catalog.factors import META_LABELS

OTHER = "other"
# Each meta-label is a WordNet synset name (lemma); `wheeled_vehicle` is a kind of `vehicle`, so
# the nearest ancestor wins (a car is a wheeled vehicle, a sailing ship a vessel).
_SPECIFIC = tuple(m for m in META_LABELS if m != OTHER)


def derive_from_hypernyms(paths: Iterable[Iterable[str]]) -> str:
    """The meta-label of a class from its hypernym paths (each path: the class first, root last).

    The meta-label whose synset lies closest to the class on any path wins; ties are broken by
    the paper's order of META_LABELS; no meta-label on any path gives "other".
    """
    best: tuple[int, int] | None = None
    for path in paths:
        for depth, name in enumerate(path):
            lemma = name.split(".")[0]
            if lemma in _SPECIFIC:
                cand = (depth, _SPECIFIC.index(lemma))
                if best is None or cand < best:
                    best = cand
                break  # deeper ancestors on this path are further away
    return _SPECIFIC[best[1]] if best else OTHER


def wordnet_hypernym_paths(wnid: str) -> list[list[str]] | None:
    """Hypernym paths of an ImageNet wnid ("n02084071") from NLTK's WordNet, or None without the data."""
    try:
        from nltk.corpus import wordnet as wn

        wn.ensure_loaded()
    except (ImportError, LookupError, OSError):
        return None
    try:
        synset = wn.synset_from_pos_and_offset(wnid[0], int(wnid[1:]))
    except (ValueError, IndexError, LookupError):
        return []
    return [[s.name() for s in reversed(p)] for p in synset.hypernym_paths()]


def derive_meta_labels(
    wnids: Iterable[str], paths_of: Callable[[str], list[list[str]] | None] = wordnet_hypernym_paths
) -> dict[str, str] | None:
    """wnid -> meta-label for every wnid, or None when no WordNet data is available."""
    out: dict[str, str] = {}
    for wnid in wnids:
        paths = paths_of(wnid)
        if paths is None:
            return None
        out[wnid] = derive_from_hypernyms(paths)
    return out
