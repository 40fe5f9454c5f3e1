"""The main-factor rule of the one answer validator (catalog.answers)."""

import pytest

from catalog.answers import answer_clean
from infra.errors import DomainError

pytestmark = pytest.mark.embedded
BASE = {"nothing_differs": False, "justification": "turned and dark", "one_word": "dark"}


def clean(**kw):
    return answer_clean(**{**BASE, **kw})


def test_a_ticked_main_factor_is_kept():
    assert clean(factors=["pose", "darker"], main_factor="darker", main_factor_required=True).main_factor == "darker"


def test_a_main_factor_that_is_not_ticked_is_refused_even_where_none_is_asked():
    for required in (True, False):
        with pytest.raises(DomainError) as e:
            clean(factors=["pose", "darker"], main_factor="color", main_factor_required=required)
        assert e.value.field == "main_factor" and "must be one of the ticked factors" in e.value.message


def test_an_unknown_main_factor_is_refused():
    with pytest.raises(DomainError) as e:
        clean(factors=["pose"], main_factor="smell")
    assert e.value.field == "main_factor"


def test_one_ticked_factor_implies_the_main_factor():
    assert clean(factors=["pose"], main_factor_required=True).main_factor == "pose"


def test_two_ticked_factors_need_the_main_one_named_where_the_campaign_asks():
    with pytest.raises(DomainError) as e:
        clean(factors=["pose", "darker"], main_factor_required=True)
    assert e.value.field == "main_factor" and "main one" in e.value.message
    assert clean(factors=["pose", "darker"]).main_factor == ""  # not asked: none


def test_nothing_differs_has_no_main_factor():
    a = answer_clean(factors=[], nothing_differs=True, justification="same", one_word="same", main_factor_required=True)
    assert a.main_factor == ""
    with pytest.raises(DomainError):
        answer_clean(factors=[], nothing_differs=True, justification="same", one_word="same", main_factor="pose")
