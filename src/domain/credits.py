"""Credits: the internal currency, held exactly as integer micro-credits (PostgreSQL BIGINT)."""

import re
from dataclasses import dataclass

from domain.errors import InvalidInput

MICROS_PER_CREDIT = 1_000_000
FRACTION_DIGITS = 6
MAX_MICROS = 2**63 - 1
MIN_MICROS = -(2**63)


def decimal_text(integer: str, *, signed: bool = True) -> str:
    """The regex of an amount's text whose integer part matches `integer`: an optional leading minus, then 1-6 ASCII
    fractional digits if any. The API's patterns of amounts are built from it (`application.patterns`)."""
    return rf"{'-?' if signed else ''}({integer})(\.[0-9]{{1,{FRACTION_DIGITS}}})?"


# No leading zeros except a lone "0" ("007" is rejected).
DECIMAL = decimal_text("0|[1-9][0-9]*")
_DECIMAL = re.compile(DECIMAL, re.ASCII)
_MAX_TEXT_LENGTH = 64


class InvalidAmount(InvalidInput):
    default_detail = "An amount of credits is a decimal string with at most 6 fractional digits."


@dataclass(frozen=True, slots=True, order=True)
class Credits:
    """An exact amount; `Credits(1)` is one micro-credit, `Credits.parse("1")` one credit."""

    micros: int

    def __post_init__(self) -> None:
        if type(self.micros) is not int:
            raise InvalidAmount(f"credits are a whole number of micro-credits, not {type(self.micros).__name__}")
        if not MIN_MICROS <= self.micros <= MAX_MICROS:
            raise InvalidAmount(f"the amount is out of range: micro-credits are between {MIN_MICROS} and {MAX_MICROS}")

    @classmethod
    def zero(cls) -> "Credits":
        return cls(0)

    @classmethod
    def whole(cls, amount: int) -> "Credits":
        """`Credits.whole(20)` is 20 credits."""
        if type(amount) is not int:
            raise InvalidAmount(f"a number of whole credits is an int, not {type(amount).__name__}")
        return cls(amount * MICROS_PER_CREDIT)

    @classmethod
    def parse(cls, text: str, *, field: str = "amount") -> "Credits":
        """`"12.5"` -> 12_500_000 micros. No exponent, `+`, spaces, NaN, `_`, or more than 6 decimals."""
        if not isinstance(text, str) or len(text) > _MAX_TEXT_LENGTH or not _DECIMAL.fullmatch(text):
            raise InvalidAmount(field=field)
        negative = text.startswith("-")
        whole, _, fraction = text.removeprefix("-").partition(".")
        micros = int(whole) * MICROS_PER_CREDIT + int(fraction.ljust(FRACTION_DIGITS, "0"))
        try:
            return cls(-micros if negative else micros)
        except InvalidAmount:
            raise InvalidAmount("the amount is out of range", field=field) from None

    def __str__(self) -> str:
        """The canonical decimal: `"12.5"`, `"20"`, `"0"`, `"-0.000001"`; `parse(str(c)) == c`."""
        sign = "-" if self.micros < 0 else ""
        whole, fraction = divmod(abs(self.micros), MICROS_PER_CREDIT)
        digits = f"{fraction:0{FRACTION_DIGITS}d}".rstrip("0")
        return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __add__(self, other: "Credits") -> "Credits":
        if not isinstance(other, Credits):
            return NotImplemented
        return Credits(self.micros + other.micros)

    def __sub__(self, other: "Credits") -> "Credits":
        if not isinstance(other, Credits):
            return NotImplemented
        return Credits(self.micros - other.micros)

    def __neg__(self) -> "Credits":
        return Credits(-self.micros)

    def is_zero(self) -> bool:
        return self.micros == 0

    def is_positive(self) -> bool:
        return self.micros > 0
