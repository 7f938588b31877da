"""Token prices: `unit_tokens` tokens cost `input_credits` (prompt) / `output_credits` (completion); prompt tokens
the provider served from its cache cost `cached_input_credits`, those it wrote to its cache `cache_write_credits`
(each `input_credits` when not set)."""

from dataclasses import dataclass

from domain.credits import Credits
from domain.errors import InvalidInput

MAX_UNIT_TOKENS = 1_000_000_000
MAX_TOKENS = 100_000_000
MAX_PRICE_MICROS = 10**10  # 10,000 credits per unit: with MAX_TOKENS a cost stays far inside BIGINT


@dataclass(frozen=True, slots=True)
class Usage:
    """`input_tokens` counts every prompt token, the cached and the cache-written ones included; `output_tokens`
    every generated token, the reasoning ones included."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        counts = (
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
        )
        for count in counts:
            if not 0 <= count <= MAX_TOKENS:
                raise InvalidInput(f"a token count is between 0 and {MAX_TOKENS}", field="usage")
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise InvalidInput("cached and cache-written tokens are part of the input tokens", field="usage")
        if self.reasoning_tokens > self.output_tokens:
            raise InvalidInput("reasoning tokens are part of the output tokens", field="usage")

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens - self.cache_write_tokens

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class Pricing:
    unit_tokens: int
    input_credits: Credits
    output_credits: Credits
    cached_input_credits: Credits | None = None
    """None: cached prompt tokens cost `input_credits`."""
    cache_write_credits: Credits | None = None
    """None: prompt tokens written to the cache cost `input_credits`."""

    def __post_init__(self) -> None:
        if not 1 <= self.unit_tokens <= MAX_UNIT_TOKENS:
            raise InvalidInput(f"unit_tokens is a whole number from 1 to {MAX_UNIT_TOKENS}", field="unit_tokens")
        prices = (
            ("input_credits", self.input_credits),
            ("output_credits", self.output_credits),
            ("cached_input_credits", self.cached_input_credits),
            ("cache_write_credits", self.cache_write_credits),
        )
        for name, price in prices:
            if price is not None and not 0 <= price.micros <= MAX_PRICE_MICROS:
                raise InvalidInput("a price is between 0 and 10000 credits per unit", field=f"pricing.{name}")

    @property
    def cached_input_price(self) -> Credits:
        return self.input_credits if self.cached_input_credits is None else self.cached_input_credits

    @property
    def cache_write_price(self) -> Credits:
        return self.input_credits if self.cache_write_credits is None else self.cache_write_credits

    def input_cost(self, tokens: int) -> Credits:
        """Prompt tokens at `input_credits` (the pre-charge: before the call, no token is known to be cached)."""
        return self._class_cost(tokens, self.input_credits)

    def output_cost(self, tokens: int) -> Credits:
        return self._class_cost(tokens, self.output_credits)

    def cost(self, usage: Usage) -> Credits:
        """Each token class rounded up to the micro-credit on its own: a non-zero count at a non-zero price never
        costs zero, and the cost is monotonic in every count."""
        return (
            self.input_cost(usage.uncached_input_tokens)
            + self._class_cost(usage.cached_input_tokens, self.cached_input_price)
            + self._class_cost(usage.cache_write_tokens, self.cache_write_price)
            + self.output_cost(usage.output_tokens)
        )

    def most_cost(self, input_tokens: int, output_tokens: int) -> Credits:
        """The most this prompt and output can cost however the provider's cache serves the prompt: every prompt
        token at the highest of its prices (within the micro-credit each class rounds up on its own)."""
        highest = max(self.input_credits, self.cached_input_price, self.cache_write_price)
        return self._class_cost(input_tokens, highest) + self.output_cost(output_tokens)

    def _class_cost(self, tokens: int, price: Credits) -> Credits:
        return Credits(_ceil_div(tokens * price.micros, self.unit_tokens))
