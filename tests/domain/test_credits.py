"""Credits are exact: parsing, formatting and arithmetic agree with integers and `decimal.Decimal`, or fail cleanly."""

import operator
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.credits import MAX_MICROS, MICROS_PER_CREDIT, MIN_MICROS, Credits, InvalidAmount
from domain.errors import DomainError

micros = st.integers(min_value=MIN_MICROS, max_value=MAX_MICROS)
amounts = micros.map(Credits)

MIN_CREDITS = Decimal(MIN_MICROS).scaleb(-6)
MAX_CREDITS = Decimal(MAX_MICROS).scaleb(-6)


@st.composite
def decimal_strings(draw: st.DrawFn) -> str:
    """Every form `parse` accepts, including ones far outside BIGINT."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.sampled_from(["0"]) | st.from_regex(r"[1-9][0-9]{0,22}", fullmatch=True))
    fraction = draw(st.sampled_from([""]) | st.from_regex(r"\.[0-9]{1,6}", fullmatch=True))
    return f"{sign}{whole}{fraction}"


@settings(max_examples=2000)
@given(m=micros)
@example(m=MAX_MICROS)
@example(m=MIN_MICROS)
@example(m=-1)
@example(m=0)
def test_str_round_trips(m: int) -> None:
    assert Credits.parse(str(Credits(m))) == Credits(m)


@settings(max_examples=2000)
@given(d=st.decimals(places=6, allow_nan=False, allow_infinity=False, min_value=MIN_CREDITS, max_value=MAX_CREDITS))
@example(d=MIN_CREDITS)
@example(d=MAX_CREDITS)
@example(d=Decimal("-0.000000"))
def test_parse_of_a_decimal_is_its_micros(d: Decimal) -> None:
    text = format(d, "f")  # never an exponent, never a leading zero other than "0.", at most 6 decimals
    assert Credits.parse(text).micros == int(d.scaleb(6))


@settings(max_examples=2000)
@given(text=decimal_strings())
@example(text="9223372036854.775807")
@example(text="9223372036854.775808")
@example(text="-9223372036854.775808")
@example(text="-9223372036854.775809")
def test_parse_agrees_with_decimal(text: str) -> None:
    exact = Decimal(text).scaleb(6)
    assert exact == exact.to_integral_value()
    expected = int(exact)
    if MIN_MICROS <= expected <= MAX_MICROS:
        assert Credits.parse(text).micros == expected
    else:
        with pytest.raises(InvalidAmount):
            Credits.parse(text)


@settings(max_examples=2000)
@given(m=micros)
def test_str_is_the_canonical_decimal(m: int) -> None:
    text = str(Credits(m))
    assert Decimal(text) == Decimal(m).scaleb(-6)
    assert not text.endswith(".")
    assert "." not in text or not text.endswith("0")
    assert text != "-0"


@pytest.mark.parametrize(
    ("m", "text"),
    [
        (12_500_000, "12.5"),
        (-1, "-0.000001"),
        (0, "0"),
        (20_000_000, "20"),
        (1, "0.000001"),
        (-12_500_000, "-12.5"),
        (10_000_010, "10.00001"),
        (MAX_MICROS, "9223372036854.775807"),
        (MIN_MICROS, "-9223372036854.775808"),
    ],
)
def test_canonical_formatting(m: int, text: str) -> None:
    assert str(Credits(m)) == text
    assert format(Credits(m)) == text
    assert f"{Credits(m)}" == text


def test_format_spec_applies_to_the_canonical_string() -> None:
    assert f"{Credits(12_500_000):>6}" == "  12.5"


@pytest.mark.parametrize(
    ("text", "m"),
    [
        ("12", 12_000_000),
        ("12.5", 12_500_000),
        ("-0.000001", -1),
        ("0.1", 100_000),
        ("0", 0),
        ("-0", 0),
        ("0.000000", 0),
        ("1.500000", 1_500_000),
    ],
)
def test_parse_examples(text: str, m: int) -> None:
    assert Credits.parse(text) == Credits(m)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "1.",
        "5.",
        ".5",
        "+1",
        "1e3",
        "1E3",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "1.0000001",
        " 1",
        "1 ",
        "1\n",
        "\t1",
        "1_000",
        "--1",
        "-+1",
        "1-2",
        "1.-2",
        "1.2.3",
        "0x10",
        "007",
        "00",
        "-01",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: int() would take it
        "1\u0661",
        "\u0661.5",
        "9223372036854.775808",
        "-9223372036854.775809",
        "99999999999999999999999999",
        "1" * 65,
        "1" + "0" * 64,
    ],
)
def test_rejected(text: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        Credits.parse(text)
    assert type(raised.value) is InvalidAmount
    assert raised.value.field == "amount"


def test_the_error_names_the_field_and_is_a_domain_error() -> None:
    with pytest.raises(InvalidAmount) as raised:
        Credits.parse("1e3", field="pricing.input_credits")
    assert raised.value.field == "pricing.input_credits"
    assert isinstance(raised.value, DomainError)
    assert raised.value.detail


@settings(max_examples=2000)
@given(text=st.text() | st.text(alphabet="0123456789.-+eE_ \u0661\u00b2", max_size=30) | decimal_strings())
def test_parse_returns_credits_or_raises_invalid_amount(text: str) -> None:
    try:
        result = Credits.parse(text)
    except InvalidAmount:
        return
    assert isinstance(result, Credits)
    assert Decimal(text) == Decimal(result.micros).scaleb(-6)


@pytest.mark.parametrize("value", [True, False, 1.0, Decimal(1), "1", None])
def test_micros_must_be_an_int(value: object) -> None:
    with pytest.raises(InvalidAmount):
        Credits(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("m", [MAX_MICROS + 1, MIN_MICROS - 1, 2**64, -(2**100)])
def test_micros_must_fit_a_bigint(m: int) -> None:
    with pytest.raises(InvalidAmount):
        Credits(m)


def test_whole_credits() -> None:
    assert Credits.whole(20) == Credits(20 * MICROS_PER_CREDIT) == Credits.parse("20")
    assert Credits.zero() == Credits(0) == Credits.whole(0)
    with pytest.raises(InvalidAmount):
        Credits.whole(MAX_MICROS // MICROS_PER_CREDIT + 1)
    with pytest.raises(InvalidAmount):
        Credits.whole(True)


@settings(max_examples=2000)
@given(a=micros, b=micros)
@example(a=MAX_MICROS, b=1)
@example(a=MIN_MICROS, b=-1)
@example(a=MIN_MICROS, b=0)
def test_add_and_sub_agree_with_ints_or_raise_invalid_amount(a: int, b: int) -> None:
    x, y = Credits(a), Credits(b)
    for result, op in ((a + b, operator.add), (a - b, operator.sub)):
        if MIN_MICROS <= result <= MAX_MICROS:
            assert op(x, y) == Credits(result)
        else:
            with pytest.raises(InvalidAmount):
                op(x, y)


@settings(max_examples=2000)
@given(a=amounts, b=amounts)
def test_add_is_commutative(a: Credits, b: Credits) -> None:
    try:
        left = a + b
    except InvalidAmount:
        with pytest.raises(InvalidAmount):
            b + a
        return
    assert left == b + a


@given(a=amounts)
def test_subtracting_itself_is_zero(a: Credits) -> None:
    assert a - a == Credits.zero()
    assert (a - a).is_zero()


@given(a=amounts.filter(lambda c: c.micros != MIN_MICROS))
def test_negation_is_an_involution(a: Credits) -> None:
    negated = -a
    assert -negated == a
    assert (-a).micros == -a.micros


def test_negating_the_minimum_overflows_cleanly() -> None:
    with pytest.raises(InvalidAmount):
        -Credits(MIN_MICROS)


def test_overflow_is_invalid_amount_not_overflow_error() -> None:
    with pytest.raises(InvalidAmount):
        Credits(MAX_MICROS) + Credits(1)
    with pytest.raises(InvalidAmount):
        Credits(MIN_MICROS) - Credits(1)


@given(a=amounts, b=amounts)
def test_order_follows_micros(a: Credits, b: Credits) -> None:
    assert (a < b) == (a.micros < b.micros)
    assert (a == b) == (a.micros == b.micros)


@given(a=amounts)
def test_sign_predicates(a: Credits) -> None:
    assert a.is_zero() == (a.micros == 0)
    assert a.is_positive() == (a.micros > 0)


def test_adding_a_non_credits_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Credits(1) + 1  # type: ignore[operator]
