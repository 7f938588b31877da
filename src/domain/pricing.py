"""Token prices: `unit_tokens` tokens cost `input_credits` (prompt) / `output_credits` (completion)."""

from dataclasses import dataclass

from domain.credits import Credits
from domain.errors import InvalidInput

MAX_UNIT_TOKENS = 1_000_000_000
MAX_TOKENS = 100_000_000
MAX_PRICE_MICROS = 10**10  # 10,000 credits per unit: with MAX_TOKENS a cost stays far inside BIGINT


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        for count in (self.input_tokens, self.output_tokens):
            if not 0 <= count <= MAX_TOKENS:
                raise InvalidInput(f"a token count is between 0 and {MAX_TOKENS}", field="usage")


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class Pricing:
    unit_tokens: int
    input_credits: Credits
    output_credits: Credits

    def __post_init__(self) -> None:
        if not 1 <= self.unit_tokens <= MAX_UNIT_TOKENS:
            raise InvalidInput(f"unit_tokens is a whole number from 1 to {MAX_UNIT_TOKENS}", field="unit_tokens")
        for name, price in (("input_credits", self.input_credits), ("output_credits", self.output_credits)):
            if not 0 <= price.micros <= MAX_PRICE_MICROS:
                raise InvalidInput("a price is between 0 and 10000 credits per unit", field=f"pricing.{name}")

    def input_cost(self, tokens: int) -> Credits:
        """Rounded up to the micro-credit: a non-zero usage at a non-zero price never costs zero."""
        return Credits(_ceil_div(tokens * self.input_credits.micros, self.unit_tokens))

    def output_cost(self, tokens: int) -> Credits:
        return Credits(_ceil_div(tokens * self.output_credits.micros, self.unit_tokens))

    def cost(self, usage: Usage) -> Credits:
        return self.input_cost(usage.input_tokens) + self.output_cost(usage.output_tokens)
