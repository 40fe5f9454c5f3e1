"""The one answer validator and its limits: the annotator's form and API, review's corrections
and adjudications, and (for what a stored record must fit) the release importer use it.

An answer is the 16 factor ticks, or "nothing differs" chosen explicitly (never both, never
neither), a justification and a one-word summary. The annotation record (catalog.Annotation)
is owned by this stage, so its rules live here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from catalog.factors import FACTOR_KEYS
from infra.errors import DomainError

# Length limits, checked at the field (form, API and service say the same thing).
JUSTIFICATION_MAX = 2000
ONE_WORD_MAX = 40
ONE_WORD_MAX_WORDS = 3
# What the Annotation.one_word column holds. Larger than ONE_WORD_MAX because the published
# ImageNet-X release has summaries longer than the form allows (see catalog.importers).
ONE_WORD_STORED_MAX = 300
# The summary's rule (1 to ONE_WORD_MAX_WORDS words, as one_word_error counts them with
# str.split) as a pattern for the API schema, so that a client following it is never refused.
_WORDS = r"[^\s\u0000]+(\s+[^\s\u0000]+){0," + str(ONE_WORD_MAX_WORDS - 1) + "}"
ONE_WORD_PATTERN = r"^\s*" + _WORDS + r"\s*$"
ONE_WORD_OPTIONAL_PATTERN = r"^\s*(" + _WORDS + r")?\s*$"
ONE_WORD_PATTERN_MESSAGE = f"The summary is one word (at most {ONE_WORD_MAX_WORDS})."
# A browser tab left open for hours should not claim days of work time.
TIME_ON_TASK_MAX_MS = 6 * 60 * 60 * 1000


@dataclass
class Answer:
    """A validated answer."""

    factors: list[str]
    nothing_differs: bool
    justification: str
    one_word: str
    time_on_task_ms: int | None = None
    errors: dict[str, str] = field(default_factory=dict)


def answer_clean(
    *,
    factors: Iterable[str],
    nothing_differs: bool,
    justification: str,
    one_word: str,
    time_on_task_ms: int | None = None,
    one_word_required: bool = True,
) -> Answer:
    """Validate an answer; raises DomainError naming the first bad field (details hold them all).

    `one_word_required=False` is for reviewers' corrections and adjudications, where the summary
    may be left empty; when given, it obeys the same limits as the annotator's.
    """
    factors = list(factors)
    errors: dict[str, str] = {}
    unknown = [f for f in factors if f not in FACTOR_KEYS]
    if unknown:
        errors["factors"] = f"Unknown factor(s): {', '.join(sorted(map(str, unknown)))}."
    chosen = [k for k in FACTOR_KEYS if k in set(factors)]
    if chosen and nothing_differs:
        errors["nothing_differs"] = "You ticked factors and also 'nothing differs': choose one or the other."
    elif not chosen and not nothing_differs and "factors" not in errors:
        errors["factors"] = "Tick every factor that differs, or choose 'nothing differs' explicitly."
    justification = (justification or "").strip()
    if not justification:
        errors["justification"] = "A justification is required: say what makes the sample different."
    elif len(justification) > JUSTIFICATION_MAX:
        errors["justification"] = (
            f"The justification is limited to {JUSTIFICATION_MAX} characters (yours has {len(justification)})."
        )
    one_word = (one_word or "").strip()
    message = one_word_error(one_word, required=one_word_required)
    if message:
        errors["one_word"] = message
    if time_on_task_ms is not None and not 0 <= time_on_task_ms <= TIME_ON_TASK_MAX_MS:
        errors["time_on_task_ms"] = "The time on task is out of range."
    if errors:
        first = next(iter(errors))
        raise DomainError(errors[first], code="invalid", field=first, details=errors)
    return Answer(chosen, bool(nothing_differs), justification, one_word, time_on_task_ms)


def one_word_error(one_word: str, *, required: bool = True) -> str | None:
    """Why a (stripped) one-word summary is refused, or None."""
    if not one_word:
        return "A one-word summary is required." if required else None
    if len(one_word) > ONE_WORD_MAX:
        return f"The summary is limited to {ONE_WORD_MAX} characters."
    if len(one_word.split()) > ONE_WORD_MAX_WORDS:
        return f"The summary is one word (at most {ONE_WORD_MAX_WORDS})."
    return None


def factor_flags(factors: Iterable[str]) -> dict[str, bool]:
    """{factor key: ticked} for the 16 Annotation columns."""
    chosen = set(factors)
    return {k: k in chosen for k in FACTOR_KEYS}


def f1_counts(answer: Iterable[str], known: Iterable[str]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of an answer's factors against known ones."""
    a, k = set(answer), set(known)
    return len(a & k), len(a - k), len(k - a)


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 over factors; 1.0 when both answers are empty (nothing to get wrong)."""
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
