"""The explorer's filters: parsed from a query string, refused with a clear message when wrong,
written back into a query string for links (the run and release pages build theirs here too).

Two bases say which answer the factor, text and status filters read:
- `final` (default): each image's final answer now (review's rule, review.selectors.final_annotations);
- `run`: a curation run's own snapshot (CuratedImage), i.e. exactly what the run counted. The
  counts on the run page and on a release's datasheet link here with `basis=run`, so that
  clicking a count lands on the images behind it even after answers changed.

Other apps add filters through `register_filter` (the evaluation drill-down adds a model's
correctness): a filter is a URL parameter and a function that returns the image ids it keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from catalog.factors import FACTOR_KEYS, META_LABELS
from catalog.models import Split
from curation.models import TopFactorSource
from infra.errors import DomainError

BASES = ("final", "run")
FACTOR_MODES = ("all", "any")
# Review status of the answer a row shows (its source and status).
REVIEW_STATUSES: dict[str, str] = {
    "consensus": "adjudicated consensus",
    "accepted": "accepted by a reviewer",
    "corrected": "corrected by a reviewer",
    "submitted": "submitted, not reviewed",
    "imported": "imported release",
    "user": "an annotator's answer (any review status)",
}
TOP_SOURCES: dict[str, str] = dict(TopFactorSource.choices)
PAGE_SIZES = (24, 48, 96, 200)
DEFAULT_PAGE_SIZE = 48
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class ExtraFilter:
    """A filter another app adds (e.g. evaluation: `model=<run>:wrong`).

    `image_ids(dataset_id, value)` returns the ids of the images the filter keeps: a queryset of
    ids (`.values("id")`, `.values_list("image_id", flat=True)`; it stays a subquery) or any
    iterable of ints. It raises DomainError for a value it does not understand.
    """

    key: str
    label: str
    image_ids: Callable[[int, str], Any]
    describe: Callable[[str], str] | None = None


_EXTRA: dict[str, ExtraFilter] = {}
_RESERVED = {
    "basis",
    "run",
    "split",
    "class",
    "meta",
    "factor",
    "mode",
    "top",
    "top_source",
    "ref_top",
    "agrees",
    "nf_min",
    "nf_max",
    "no_vector",
    "annotator",
    "min_answers",
    "status",
    "q",
    "after",
    "before",
    "per",
}


def register_filter(flt: ExtraFilter) -> None:
    """Add a filter (call from an AppConfig.ready()). Registering the same key twice replaces it."""
    if flt.key in _RESERVED:
        raise ValueError(f"{flt.key!r} is one of the explorer's own parameters")
    _EXTRA[flt.key] = flt


def extra_filters() -> dict[str, ExtraFilter]:
    return dict(_EXTRA)


@dataclass(frozen=True)
class ExplorerQuery:
    basis: str = "final"
    run_id: int | None = None  # the run whose top factor is shown (None: the dataset's latest done run)
    split: str = ""
    class_index: int | None = None
    meta_label: str = ""
    factors: tuple[str, ...] = ()
    mode: str = "all"
    top: str = ""  # a factor key, or "none" (no top factor)
    top_source: str = ""
    ref_top: str = ""  # the published (reference) top factor of imported records
    agrees: str = ""  # "yes" / "no": our top factor equals the published one
    nf_min: int | None = None  # number of selected factors
    nf_max: int | None = None
    no_vector: bool = False  # the run found no word vector in the text
    annotator: str = ""  # username: images this person answered
    min_answers: int | None = None  # images with at least this many annotators' answers (multi-review)
    status: str = ""
    q: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    after: int | None = None
    before: int | None = None
    per: int = DEFAULT_PAGE_SIZE
    # Set by code, never by the URL: a direct restriction to these images (ids or a queryset).
    image_ids: Any = field(default=None, compare=False)

    def params(self, **overrides: Any) -> list[tuple[str, str]]:
        """The query string pairs of this query (pagination cursors left out unless overridden)."""
        q = replace(self, **{"after": None, "before": None, **overrides})
        out: list[tuple[str, str]] = []
        if q.basis != "final":
            out.append(("basis", q.basis))
        if q.run_id is not None:
            out.append(("run", str(q.run_id)))
        for key in ("split", "meta_label", "top", "top_source", "ref_top", "agrees", "annotator", "status", "q"):
            value = getattr(q, key)
            if value:
                out.append(("meta" if key == "meta_label" else key, value))
        if q.class_index is not None:
            out.append(("class", str(q.class_index)))
        out += [("factor", k) for k in q.factors]
        if q.factors and q.mode != "all":
            out.append(("mode", q.mode))
        for key in ("nf_min", "nf_max", "min_answers"):
            if getattr(q, key) is not None:
                out.append((key, str(getattr(q, key))))
        if q.no_vector:
            out.append(("no_vector", "1"))
        out += list(q.extra)
        if q.per != DEFAULT_PAGE_SIZE:
            out.append(("per", str(q.per)))
        if q.after is not None:
            out.append(("after", str(q.after)))
        if q.before is not None:
            out.append(("before", str(q.before)))
        return out

    def query_string(self, **overrides: Any) -> str:
        return urlencode(self.params(**overrides))

    @property
    def is_filtered(self) -> bool:
        return bool(self.params(basis="final", run_id=None, per=DEFAULT_PAGE_SIZE))


def _int(params: Any, key: str, *, minimum: int = 0) -> int | None:
    raw = (params.get(key) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DomainError(f"{key} must be a whole number, not {raw!r}.", field=key)
    if value < minimum:
        raise DomainError(f"{key} must be at least {minimum}.", field=key)
    return value


def _choice(params: Any, key: str, allowed: Iterable[str], what: str) -> str:
    value = (params.get(key) or "").strip()
    allowed = list(allowed)
    if value and value not in allowed:
        raise DomainError(f"{key}={value!r} is not {what}; use one of: {', '.join(allowed)}.", field=key)
    return value


def parse_query(params: Any) -> ExplorerQuery:
    """An ExplorerQuery from request.GET (a QueryDict); DomainError (400) for a bad value."""
    factors = tuple(dict.fromkeys(v.strip() for v in params.getlist("factor") if v.strip()))
    unknown = [k for k in factors if k not in FACTOR_KEYS]
    if unknown:
        raise DomainError(f"Unknown factor {unknown[0]!r}; the factors are {', '.join(FACTOR_KEYS)}.", field="factor")
    q = (params.get("q") or "").strip()
    if len(q) > MAX_QUERY_LENGTH:
        raise DomainError(f"The search text is limited to {MAX_QUERY_LENGTH} characters.", field="q")
    if "\x00" in q:
        raise DomainError("The search text contains a NUL character.", field="q")
    per = _int(params, "per", minimum=1) or DEFAULT_PAGE_SIZE
    if per not in PAGE_SIZES:
        raise DomainError(f"per must be one of {', '.join(map(str, PAGE_SIZES))}.", field="per")
    after, before = _int(params, "after"), _int(params, "before")
    if after is not None and before is not None:
        raise DomainError("Give after or before, not both.", field="after")
    nf_min, nf_max = _int(params, "nf_min"), _int(params, "nf_max")
    if nf_min is not None and nf_max is not None and nf_min > nf_max:
        raise DomainError("nf_min is larger than nf_max.", field="nf_min")
    extra = []
    for key, flt in _EXTRA.items():
        value = (params.get(key) or "").strip()
        if value:
            extra.append((key, value))
            del flt  # validated when the filter runs (it knows its values)
    no_vector = (params.get("no_vector") or "").strip()
    if no_vector not in ("", "0", "1"):
        raise DomainError("no_vector is 1 or 0.", field="no_vector")
    return ExplorerQuery(
        basis=_choice(params, "basis", BASES, "a basis") or "final",
        run_id=_int(params, "run", minimum=1),
        split=_choice(params, "split", Split.values, "a split"),
        class_index=_int(params, "class"),
        meta_label=_choice(params, "meta", META_LABELS, "a meta-label"),
        factors=factors,
        mode=_choice(params, "mode", FACTOR_MODES, "a factor mode") or "all",
        top=_choice(params, "top", [*FACTOR_KEYS, "none"], "a factor (or none)"),
        top_source=_choice(params, "top_source", [*TOP_SOURCES, "none"], "a top-factor source"),
        ref_top=_choice(params, "ref_top", [*FACTOR_KEYS, "none", "any"], "a factor (or none, any)"),
        agrees=_choice(params, "agrees", ["yes", "no"], "yes or no"),
        nf_min=nf_min,
        nf_max=nf_max,
        no_vector=no_vector == "1",
        annotator=(params.get("annotator") or "").strip()[:150],
        min_answers=_int(params, "min_answers", minimum=1),
        status=_choice(params, "status", REVIEW_STATUSES, "a review status"),
        q=q,
        extra=tuple(extra),
        after=after,
        before=before,
        per=per,
    )
