from decimal import ROUND_CEILING, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.credits import Credits
from domain.errors import InvalidInput
from domain.pricing import MAX_PRICE_MICROS, MAX_TOKENS, Pricing, Usage

tokens = st.integers(min_value=0, max_value=MAX_TOKENS // 8)
prices = st.integers(min_value=0, max_value=MAX_PRICE_MICROS).map(Credits)
units = st.integers(min_value=1, max_value=10**6)
pricings = st.builds(
    Pricing,
    unit_tokens=units,
    input_credits=prices,
    output_credits=prices,
    cached_input_credits=st.none() | prices,
    cache_write_credits=st.none() | prices,
)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Any usage within the invariants, built from its token classes."""
    uncached, cached, written, answer, reasoning = (draw(tokens) for _ in range(5))
    return Usage(uncached + cached + written, answer + reasoning, cached, written, reasoning)


def _oracle(count: int, price: Credits | None, pricing: Pricing) -> Decimal:
    exact = Decimal(count) * Decimal((price or pricing.input_credits).micros) / Decimal(pricing.unit_tokens)
    return exact.to_integral_value(rounding=ROUND_CEILING)


@settings(max_examples=2000)
@given(pricing=pricings, usage=usages())
def test_cost_is_the_exact_ceiling_of_each_token_class(pricing: Pricing, usage: Usage) -> None:
    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    expected = (
        _oracle(uncached, pricing.input_credits, pricing)
        + _oracle(usage.cached_input_tokens, pricing.cached_input_credits, pricing)
        + _oracle(usage.cache_write_tokens, pricing.cache_write_credits, pricing)
        + _oracle(usage.output_tokens, pricing.output_credits, pricing)
    )
    assert pricing.cost(usage).micros == expected


@settings(max_examples=2000)
@given(pricing=pricings, usage=usages())
def test_cost_is_never_negative(pricing: Pricing, usage: Usage) -> None:
    assert pricing.cost(usage) >= Credits.zero()


@settings(max_examples=2000)
@given(pricing=pricings, usage=usages(), extra=usages())
def test_cost_is_monotonic_in_every_token_class(pricing: Pricing, usage: Usage, extra: Usage) -> None:
    """More tokens of any class (uncached, cached, cache-written prompt; answer, reasoning) never cost less."""
    assert pricing.cost(usage) <= pricing.cost(usage + extra)


@settings(max_examples=2000)
@given(unit=units, price=st.integers(min_value=1, max_value=MAX_PRICE_MICROS).map(Credits), usage=usages())
def test_non_zero_usage_at_non_zero_prices_costs_at_least_one_micro(unit: int, price: Credits, usage: Usage) -> None:
    pricing = Pricing(unit, price, price, cached_input_credits=price, cache_write_credits=price)
    assert (pricing.cost(usage).micros >= 1) == (usage.input_tokens + usage.output_tokens > 0)


@settings(max_examples=2000)
@given(pricing=pricings, usage=usages())
def test_the_most_cost_bounds_every_way_the_cache_can_serve_the_prompt(pricing: Pricing, usage: Usage) -> None:
    """Up to the micro-credit each of the two other prompt classes may round up on its own."""
    assert pricing.cost(usage) <= pricing.most_cost(usage.input_tokens, usage.output_tokens) + Credits(2)


def test_the_most_cost_prices_the_prompt_at_its_dearest() -> None:
    pricing = Pricing(100, Credits.whole(20), Credits.whole(10), Credits.whole(2), Credits.whole(25))
    assert str(pricing.most_cost(100, 10)) == "26"
    assert pricing.most_cost(100, 10) == pricing.cost(Usage(100, 10, cache_write_tokens=100))


@settings(max_examples=500)
@given(pricing=pricings, usage=usages())
def test_unset_cache_prices_are_the_input_price(pricing: Pricing, usage: Usage) -> None:
    """Up to the rounding of each prompt class on its own (at most one micro-credit more per class)."""
    plain = Pricing(pricing.unit_tokens, pricing.input_credits, pricing.output_credits)
    unsplit = plain.cost(Usage(usage.input_tokens, usage.output_tokens))
    assert unsplit <= plain.cost(usage) <= unsplit + Credits(2)


def test_a_cached_prompt_costs_its_cached_price() -> None:
    pricing = Pricing(100, Credits.whole(20), Credits.whole(20), cached_input_credits=Credits.whole(2))
    written = Pricing(100, Credits.whole(20), Credits.whole(20), cache_write_credits=Credits.whole(25))
    # llama-server's repeated prompt: 42 prompt tokens, 41 of them read from its cache.
    assert str(pricing.cost(Usage(42, 0, cached_input_tokens=41))) == "1.02"
    assert str(written.cost(Usage(42, 10, cache_write_tokens=40, reasoning_tokens=3))) == "12.4"


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


@pytest.mark.parametrize(
    "counts",
    [(-1, 0), (0, -1), (MAX_TOKENS + 1, 0), (5, 0, -1), (5, 0, 0, -1), (5, 5, 0, 0, -1), (5, 0, 0, 0, MAX_TOKENS + 1)],
)
def test_usage_is_bounded(counts: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInput):
        Usage(*counts)


@pytest.mark.parametrize("counts", [(5, 0, 6), (5, 0, 0, 6), (5, 0, 3, 3), (5, 2, 0, 0, 3)])
def test_cached_and_written_are_part_of_the_input_and_reasoning_of_the_output(counts: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInput):
        Usage(*counts)


@pytest.mark.parametrize("name", ["cached_input_credits", "cache_write_credits"])
@pytest.mark.parametrize("micros", [-1, MAX_PRICE_MICROS + 1])
def test_cache_prices_are_bounded(name: str, micros: int) -> None:
    with pytest.raises(InvalidInput):
        Pricing(100, Credits(1), Credits(1), **{name: Credits(micros)})


def test_the_largest_cost_fits_in_bigint() -> None:
    most = Pricing(1, *(Credits(MAX_PRICE_MICROS),) * 4)
    assert most.cost(Usage(MAX_TOKENS, MAX_TOKENS)).micros < 2**63
    assert most.cost(Usage(MAX_TOKENS, MAX_TOKENS, MAX_TOKENS // 2, MAX_TOKENS // 2)).micros < 2**63
