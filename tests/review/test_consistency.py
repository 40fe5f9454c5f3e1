"""Text/checkbox consistency flags on hand-made texts, with the real spaCy vectors."""

import pytest

from infra.embeddings import load_nlp
from review import selectors, services
from review.consistency import CueMatcher
from review.models import ConsistencyFlag
from tests.review.conftest import answer

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def matcher():
    return CueMatcher(load_nlp())


def kinds(flags):
    return {(f.kind, f.factor) for f in flags}


def test_text_pointing_at_an_unticked_factor_is_flagged(matcher):
    flags = matcher.check("much darker than the prototypes", ["pose"])
    assert kinds(flags) == {("mentions_unticked", "darker")}
    assert "darker" in flags[0].reason and "not ticked" in flags[0].reason


def test_text_contradicting_a_ticked_factor_is_flagged(matcher):
    flags = matcher.check("The scene is much brighter than usual", ["darker"])
    assert kinds(flags) == {("contradicts_ticked", "darker")}
    assert "brighter" in flags[0].evidence


def test_size_antonyms_contradict_too(matcher):
    assert kinds(matcher.check("a tiny bird far away", ["larger"])) == {("contradicts_ticked", "larger")}


def test_text_matching_the_ticks_is_not_flagged(matcher):
    assert matcher.check("Much darker, the dog is lying on its side", ["darker", "pose"]) == []


def test_negated_and_unchanged_mentions_are_not_flagged(matcher):
    assert matcher.check("not darker at all; the background is the same", ["pose"]) == []


def test_spelling_variants_are_caught_through_the_word_vectors(matcher):
    (m,) = [m for m in matcher.mentions(matcher.nlp("odd colours")) if m.factor == "color"]
    assert m.via_vector and m.evidence == "colours"


def test_unrelated_words_sharing_a_vector_are_not_taken_as_cues(matcher):
    # In the pruned vector table "cat" and "dog" share a row with many words; without the shared
    # prefix check they could match cues. Nothing here names a factor.
    assert matcher.check("a cat on a sofa", []) == []


@pytest.mark.embedded
def test_flags_are_stored_once_per_version_and_go_to_the_front_of_the_queue(
    images, annotator, other_annotator, reviewer
):
    from review.models import AuditSettings

    AuditSettings.objects.update_or_create(pk=1, defaults={"base_rate": 1.0, "new_annotator_rate": 1.0})
    plain = answer(images[1], other_annotator, ["pose"], justification="turned sideways")
    flagged = answer(images[2], annotator, ["pose"], justification="much darker than the prototypes")
    assert services.consistency_check(annotation_ids=[plain.pk, flagged.pk]) == 1
    assert services.consistency_check(annotation_ids=[flagged.pk]) == 0  # idempotent
    assert ConsistencyFlag.objects.get().annotation == flagged
    queue = selectors.audit_queue(reviewer=reviewer)
    assert queue[0].kind == "flagged" and queue[0].annotation == flagged and "darker" in queue[0].reasons[0]
    assert [i.annotation for i in queue[1:]] == [plain]


def test_the_forms_own_wording_flags_nothing_else(matcher):
    from catalog.factors import FACTORS

    for f in FACTORS:
        assert matcher.check(f"The {f.wording}.", [f.key]) == [], f.key
    assert (
        matcher.check("object partially blocked by a person; lighting is darker", ["person_blocking", "darker"]) == []
    )
