"""Where an evaluation's labels come from (Django side): a published release's files (read through
the exports app's verified-file selector), a curation run's results, or the toolkit's own files.
Each is turned into an `evaluation.labels.LabelSet` and cached per process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Dataset, ImageClass, ReferencePrototype
from evaluation import labels as L
from infra.errors import DomainError

_CACHE: OrderedDict[tuple, L.LabelSet] = OrderedDict()
_LOCK = threading.Lock()
_MAX = 6


def _read_release_file(release: Any, name: str) -> bytes:
    from exports.selectors import open_verified_release_file

    fh, _, _ = open_verified_release_file(release, name)
    with fh:
        return fh.read()


def _with_real(labels: L.LabelSet, split: str) -> L.LabelSet:
    """ReaL label sets (they ship in the imagenet_x package) apply to ImageNet val file names."""
    if split != "val" or not len(labels.file_names) or not str(labels.file_names[0]).startswith("ILSVRC2012_val_"):
        return labels
    labels.real_keys, labels.real_known = L.imagenet_real_keys(
        labels.file_names, L.toolkit_real_json(), labels.n_classes
    )
    return labels


def _release_labels(release: Any, split: str, which: str) -> L.LabelSet:
    jsonl = _read_release_file(release, f"imagenet_x_{split}_{which}_factor.jsonl")
    class_meta = L.release_class_meta(_read_release_file(release, "classes.csv"))
    protos = L.read_prototype_names(_read_release_file(release, "prototypical_paths.csv"))
    labels = L.build_labels(
        jsonl=jsonl, class_meta=class_meta, prototypes=protos, real_json=None, source=f"release {release}"
    )
    return _with_real(labels, split)


def _class_meta(dataset: Dataset) -> np.ndarray:
    rows = list(ImageClass.objects.filter(dataset=dataset).values_list("index", "meta_label"))
    out = np.full(max((i for i, _ in rows), default=-1) + 1, L.OTHER, dtype=np.int8)
    for i, m in rows:
        out[i] = L.META_INDEX.get(m, L.OTHER)
    return out


def _curation_labels(run: Any, split: str, which: str) -> L.LabelSet:
    from curation.models import CuratedImage

    rows = list(
        CuratedImage.objects.filter(run=run, image__split=split)
        .order_by("image__file_name")
        .values_list(
            "image__file_name", "image__image_class__index", "top_factor", "justification", "one_word", *FACTOR_KEYS
        )
    )
    if not rows:
        raise DomainError(f"Curation run #{run.pk} has no {split} results.", code="no_labels")
    names = np.array([r[0] for r in rows], dtype=str)
    flags = np.array([r[5:] for r in rows], dtype=bool)
    if which == "top":
        top = [r[2] for r in rows]
        flags = np.zeros_like(flags)
        for i, t in enumerate(top):
            if t:
                flags[i, FACTOR_KEYS.index(t)] = True
    protos = set(ReferencePrototype.objects.filter(dataset=run.dataset).values_list("file_name", flat=True))
    labels = L.LabelSet(
        file_names=names,
        classes=np.array([r[1] for r in rows], dtype=np.int32),
        factors=flags,
        class_meta=_class_meta(run.dataset),
        is_prototype=np.isin(names, np.array(sorted(protos), dtype=str)),
        justification=np.array([r[3] for r in rows], dtype=object),
        one_word=np.array([r[4] for r in rows], dtype=object),
        source=f"curation run #{run.pk}",
    )
    return _with_real(labels, split)


def label_set(*, source: str, release: Any = None, curation_run: Any = None, split: str, which: str) -> L.LabelSet:
    """The full label set (prototypes still in) of an evaluation's label source, cached."""
    # Keyed by identity and creation time (a primary key alone can come back on SQLite after a
    # delete); a published release and a done curation run do not change afterwards.
    key = (
        source,
        getattr(release, "pk", None),
        getattr(release, "archive_sha256", None),
        getattr(curation_run, "pk", None),
        str(getattr(curation_run, "created_at", "")),
        split,
        which,
    )
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    if source == "release":
        labels = _release_labels(release, split, which)
    elif source == "curation_run":
        labels = _curation_labels(curation_run, split, which)
    elif source == "toolkit":
        labels = L.toolkit_labels(which, split)
    else:
        raise DomainError(f"Unknown label source {source!r}.", field="label_source")
    with _LOCK:
        _CACHE[key] = labels
        while len(_CACHE) > _MAX:
            _CACHE.popitem(last=False)
    return labels


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def evaluated_labels(full: L.LabelSet, *, filter_prototypes: bool) -> L.LabelSet:
    return full.subset(~full.is_prototype) if filter_prototypes else full


__all__ = ["label_set", "evaluated_labels", "META_LABELS"]
