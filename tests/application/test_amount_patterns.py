"""The patterns of the amounts a request sends state exactly what validation accepts: every text they match is an
amount `Credits.parse` reads (never out of range), and the ones that must not be zero are not."""

import re

from hypothesis import given
from hypothesis import strategies as st

from application.patterns import ADJUSTMENT, CREDITS, POSITIVE_CREDITS
from domain.credits import Credits


@given(text=st.from_regex(ADJUSTMENT))
def test_every_adjustment_the_schema_admits_is_a_non_zero_amount(text: str) -> None:
    assert not Credits.parse(text).is_zero()


@given(text=st.from_regex(POSITIVE_CREDITS))
def test_every_credit_limit_the_schema_admits_is_positive(text: str) -> None:
    assert Credits.parse(text).is_positive()


@given(micros=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_every_amount_the_api_writes_matches_the_credits_pattern(micros: int) -> None:
    assert re.search(CREDITS, str(Credits(micros)))
