from decimal import ROUND_CEILING, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.credits import Credits
from domain.errors import InvalidInput
from domain.pricing import MAX_PRICE_MICROS, MAX_TOKENS, Pricing, Usage

tokens = st.integers(min_value=0, max_value=MAX_TOKENS // 2)
prices = st.integers(min_value=0, max_value=MAX_PRICE_MICROS).map(Credits)
units = st.integers(min_value=1, max_value=10**6)
pricings = st.builds(Pricing, unit_tokens=units, input_credits=prices, output_credits=prices)


def _oracle(count: int, price: Credits, unit: int) -> int:
    exact = Decimal(count) * Decimal(price.micros) / Decimal(unit)
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


@settings(max_examples=2000)
@given(pricing=pricings, input_tokens=tokens, output_tokens=tokens)
def test_cost_is_the_exact_ceiling_of_each_part(pricing: Pricing, input_tokens: int, output_tokens: int) -> None:
    cost = pricing.cost(Usage(input_tokens, output_tokens))
    expected = _oracle(input_tokens, pricing.input_credits, pricing.unit_tokens) + _oracle(
        output_tokens, pricing.output_credits, pricing.unit_tokens
    )
    assert cost.micros == expected


@settings(max_examples=2000)
@given(pricing=pricings, input_tokens=tokens, output_tokens=tokens)
def test_cost_is_never_negative(pricing: Pricing, input_tokens: int, output_tokens: int) -> None:
    assert pricing.cost(Usage(input_tokens, output_tokens)) >= Credits.zero()


@settings(max_examples=2000)
@given(pricing=pricings, a=tokens, b=tokens, extra_in=tokens, extra_out=tokens)
def test_cost_is_monotonic_in_both_counts(pricing: Pricing, a: int, b: int, extra_in: int, extra_out: int) -> None:
    assert pricing.cost(Usage(a, b)) <= pricing.cost(Usage(a + extra_in, b + extra_out))


@settings(max_examples=2000)
@given(unit=units, price=st.integers(min_value=1, max_value=MAX_PRICE_MICROS).map(Credits), count=st.integers(1, 10**7))
def test_non_zero_usage_at_a_non_zero_price_costs_at_least_one_micro(unit: int, price: Credits, count: int) -> None:
    pricing = Pricing(unit, price, price)
    assert pricing.cost(Usage(count, 0)).micros >= 1
    assert pricing.cost(Usage(0, count)).micros >= 1


def test_the_default_catalog_examples() -> None:
    dr14 = Pricing(100, Credits.whole(20), Credits.whole(20))
    flash = Pricing(100, Credits.whole(1), Credits.whole(1))
    assert str(dr14.cost(Usage(100, 50))) == "30"
    assert str(flash.cost(Usage(1, 0))) == "0.01"
    assert str(flash.cost(Usage(150, 150))) == "3"


@pytest.mark.parametrize("unit", [0, -1, 10**9 + 1])
def test_unit_tokens_must_be_positive_and_bounded(unit: int) -> None:
    with pytest.raises(InvalidInput):
        Pricing(unit, Credits(1), Credits(1))


@pytest.mark.parametrize("micros", [-1, MAX_PRICE_MICROS + 1])
def test_prices_are_bounded(micros: int) -> None:
    with pytest.raises(InvalidInput):
        Pricing(100, Credits(micros), Credits(1))


@pytest.mark.parametrize(("input_tokens", "output_tokens"), [(-1, 0), (0, -1), (MAX_TOKENS + 1, 0)])
def test_usage_is_bounded(input_tokens: int, output_tokens: int) -> None:
    with pytest.raises(InvalidInput):
        Usage(input_tokens, output_tokens)


def test_the_largest_cost_fits_in_bigint() -> None:
    most = Pricing(1, Credits(MAX_PRICE_MICROS), Credits(MAX_PRICE_MICROS))
    assert most.cost(Usage(MAX_TOKENS, MAX_TOKENS)).micros < 2**63
