"""Text/checkbox consistency: does the justification agree with the ticked factors?

No Django import (runs in a worker or a notebook). Uses infra.embeddings' spaCy model for
tokenisation and word vectors.

The rule, and why it is built this way:

1. A *cue lexicon* per factor (CUES below) lists the words and short phrases annotators use
   for it ("darker", "dim", "at night" for `darker`; "occluded", "in front of" for
   `object_blocking`...). A factor is *mentioned* when one of its cues appears in the
   justification and is not negated.
2. The spaCy vectors widen the lexicon to spelling and inflection variants: a token that is not
   a cue itself counts as a cue when its vector is close to a cue's (cosine >= 0.6) *and* it
   shares the cue's first four letters. Measured on the vendored en_core_web_md: variants pass
   ("colours"/"colour" 0.86, "colors"/"color" 0.66, "patterns" 0.88, "sketches" 0.85,
   "poses"/"paintings"/"cartoons" 1.0) while look-alikes fail ("poster"/"pose" 0.16,
   "backward"/"background" 0.11, "drawer"/"drawing" 0.03, "texting"/"texture" 0.01).
   Vector similarity alone is not trusted: that model keeps 20k vectors for 685k words, so
   unrelated words share a vector (cos("dog","cat") = cos("darker","lighter") = 1.0) and
   synonyms can be far apart (cos("occluded","blocked") = 0.09). In particular vectors cannot
   tell antonyms apart, which is why direction comes from the lexicon only.
3. *Negation*: a cue preceded within three tokens by "not", "no", "n't", "without", "never",
   "nor", or followed within three tokens by "same"/"similar"/"unchanged" ("the background is
   the same") is not a mention.
4. *Antonym pairs* (brighter/darker, larger/smaller): when the text mentions one side, that side
   is unticked and the other side is ticked, the text *contradicts* the ticked factor
   ("darker ticked, text says brighter"). Otherwise a mentioned, unticked factor is flagged as
   *mentions unticked*. A ticked factor the text does not mention is not flagged: the paper's
   justifications are short and name the most salient factor only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from catalog.factors import FACTOR_KEYS, FACTORS_BY_KEY

CUES: dict[str, tuple[str, ...]] = {
    "pose": (
        "pose",
        "posed",
        "posing",
        "position",
        "positioned",
        "angle",
        "angled",
        "orientation",
        "rotated",
        "upside down",
        "sideways",
        "facing",
        "lying",
        "from behind",
        "from above",
        "from below",
        "tilted",
    ),
    "partial_view": (
        "partially visible",
        "partial view",
        "partially present",
        "cropped",
        "cut off",
        "truncated",
        "out of frame",
        "only part",
        "only the head",
        "only a part",
        "partly visible",
    ),
    "object_blocking": (
        "occluded",
        "occlusion",
        "obstructed",
        "blocked",
        "hidden behind",
        "covered by",
        "in front of",
        "behind a",
        "behind the",
        "obscured",
    ),
    "person_blocking": (
        "blocked by a person",
        "blocked by someone",
        "occluded by a person",
        "covered by a hand",
        "person",
        "people",
        "hand",
        "hands",
        "holding",
        "held",
        "man",
        "woman",
        "child",
        "human",
        "someone",
        "finger",
        "fingers",
    ),
    "multiple_objects": (
        "another object",
        "other objects",
        "other object",
        "several",
        "multiple",
        "group of",
        "crowd",
        "also a",
        "next to",
        "together with",
    ),
    "smaller": ("small", "smaller", "tiny", "far away", "distant", "in the distance", "far from"),
    "larger": (
        "large",
        "larger",
        "big",
        "bigger",
        "huge",
        "close up",
        "close-up",
        "closeup",
        "zoomed in",
        "fills the frame",
        "dominates",
    ),
    "brighter": (
        "bright",
        "brighter",
        "lighter",
        "sunny",
        "sunlit",
        "overexposed",
        "glare",
        "brightly",
        "well lit",
        "brightness",
    ),
    "darker": (
        "dark",
        "darker",
        "dim",
        "dimmer",
        "dimly",
        "night",
        "shadow",
        "shadows",
        "shadowy",
        "gloomy",
        "underexposed",
        "unlit",
        "low light",
        "darkness",
    ),
    "background": ("background", "backdrop", "scenery", "surroundings", "indoors", "outdoors"),
    "color": (
        "color",
        "colour",
        "colored",
        "coloured",
        "colors",
        "black and white",
        "grayscale",
        "greyscale",
        "hue",
        "tint",
        "tinted",
    ),
    "shape": ("shape", "shaped", "deformed", "bent", "distorted", "silhouette", "elongated", "squashed"),
    "texture": ("texture", "textured", "furry", "fluffy", "smooth", "rough", "sheared", "wet", "shiny"),
    "pattern": ("pattern", "patterned", "striped", "stripes", "spotted", "spots", "checkered", "dotted", "plaid"),
    "style": (
        "sketch",
        "drawing",
        "drawn",
        "cartoon",
        "painting",
        "painted",
        "illustration",
        "render",
        "rendered",
        "artwork",
        "toy",
        "sculpture",
        "statue",
        "style",
    ),
    "subcategory": ("breed", "subcategory", "variety", "kind of", "type of", "species", "subtype"),
}
assert set(CUES) == set(FACTOR_KEYS), "CUES must cover exactly the 16 factors"

ANTONYMS: dict[str, str] = {"brighter": "darker", "darker": "brighter", "larger": "smaller", "smaller": "larger"}

_NEGATE_BEFORE = {"not", "no", "n't", "without", "never", "nor", "neither", "nothing"}
_NEGATE_AFTER = {"same", "similar", "unchanged", "identical"}
_WINDOW = 3
_VECTOR_MIN = 0.6  # see the module docstring for the measured variant / look-alike cosines
_PREFIX = 4


@dataclass(frozen=True)
class Mention:
    factor: str
    evidence: str  # the words of the text
    via_vector: bool = False


@dataclass(frozen=True)
class Flag:
    kind: str  # "mentions_unticked" | "contradicts_ticked"
    factor: str  # the factor the flag is about (the unticked one, or the contradicted ticked one)
    reason: str
    evidence: str


class CueMatcher:
    """Finds factor mentions in texts with one spaCy model (loaded once, reused)."""

    def __init__(self, nlp) -> None:
        self.nlp = nlp
        # Single-word cues and their vectors; phrases are matched on token sequences.
        self.phrases: list[tuple[tuple[str, ...], str]] = []
        single: list[tuple[str, str]] = []
        for factor, cues in CUES.items():
            # The form's own wording is a cue of its factor too, and being the longest phrase it
            # wins over shorter cues inside it ("... blocked by another object" is object_blocking,
            # not multiple_objects's "another object").
            for cue in (*cues, FACTORS_BY_KEY[factor].wording):
                toks = tuple(t.lower_ for t in nlp.make_doc(cue))
                self.phrases.append((toks, factor))
                if len(toks) == 1:
                    single.append((toks[0], factor))
        self.phrases.sort(key=lambda p: -len(p[0]))  # longest phrase first
        self.single_words = [w for w, _ in single]
        self.single_factor = [f for _, f in single]
        vecs = np.stack([nlp.vocab[w].vector for w in self.single_words]).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        self.single_has_vec = norms[:, 0] > 0
        norms[norms == 0] = 1
        self.single_vecs = vecs / norms
        self.cue_words = set(self.single_words)

    def _negated(self, lowers: Sequence[str], start: int, end: int) -> bool:
        before = lowers[max(0, start - _WINDOW) : start]
        after = lowers[end : end + _WINDOW]
        return any(w in _NEGATE_BEFORE for w in before) or any(w in _NEGATE_AFTER for w in after)

    def mentions(self, doc) -> list[Mention]:
        lowers = [t.lower_ for t in doc]
        found: list[Mention] = []
        used = [False] * len(lowers)
        i = 0
        while i < len(lowers):
            hit = None
            for toks, factor in self.phrases:
                n = len(toks)
                if tuple(lowers[i : i + n]) == toks:
                    hit = (n, factor)
                    break
            if hit:
                n, factor = hit
                if not self._negated(lowers, i, i + n):
                    found.append(Mention(factor, doc[i : i + n].text))
                for j in range(i, i + n):
                    used[j] = True
                i += n
                continue
            i += 1
        # Vector-assisted variants (see the module docstring for why both conditions are needed).
        for i, tok in enumerate(doc):
            if used[i] or not tok.is_alpha or len(tok) < _PREFIX + 1 or tok.lower_ in self.cue_words:
                continue
            if not tok.has_vector or tok.vector_norm == 0:
                continue
            sims = self.single_vecs @ (tok.vector / tok.vector_norm)
            prefix_ok = np.array([w[:_PREFIX] == tok.lower_[:_PREFIX] for w in self.single_words])
            ok = (sims >= _VECTOR_MIN) & prefix_ok & self.single_has_vec
            if ok.any() and not self._negated(lowers, i, i + 1):
                found.append(Mention(self.single_factor[int(np.argmax(np.where(ok, sims, -1)))], tok.text, True))
        return found

    def check(self, text: str, ticked: Iterable[str]) -> list[Flag]:
        return flags_from_mentions(self.mentions(self.nlp(text or "")), set(ticked))

    def check_many(self, items: Sequence[tuple[str, Iterable[str]]]) -> list[list[Flag]]:
        docs = self.nlp.pipe([t or "" for t, _ in items], batch_size=256)
        return [
            flags_from_mentions(self.mentions(doc), set(ticked)) for doc, (_, ticked) in zip(docs, items, strict=True)
        ]


def flags_from_mentions(mentions: Iterable[Mention], ticked: set[str]) -> list[Flag]:
    flags: dict[tuple[str, str], Flag] = {}
    for m in mentions:
        if m.factor in ticked:
            continue
        other = ANTONYMS.get(m.factor)
        if other and other in ticked:
            key = ("contradicts_ticked", other)
            reason = (
                f"“{FACTORS_BY_KEY[other].wording}” is ticked, but the justification says "
                f"“{m.evidence}”, which points at “{FACTORS_BY_KEY[m.factor].wording}”."
            )
        else:
            key = ("mentions_unticked", m.factor)
            reason = (
                f"The justification says “{m.evidence}”, which points at "
                f"“{FACTORS_BY_KEY[m.factor].wording}”, but that factor is not ticked."
            )
        flags.setdefault(key, Flag(key[0], key[1], reason, m.evidence))
    return list(flags.values())
