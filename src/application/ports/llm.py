"""What a model provider must offer: a stream of text deltas and, when the provider reports it, its usage."""

from abc import abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    upstream_model: str
    messages: Sequence[ChatMessage]
    max_tokens: int
    temperature: float | None = None
    json_output: bool = False


@dataclass(frozen=True, slots=True)
class TextDelta:
    """`tokens`: the delta's exact token count when the provider knows it (the simulator does); None means the
    run counts the text with the model's tokenizer."""

    text: str
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token counts as the provider reported them (trusted only when plausible: non-negative, bounded, and the
    cached, cache-written and reasoning tokens within the totals they are part of). `input_tokens` counts every
    prompt token, cached and written ones included; `output_tokens` every generated one, reasoning included."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


StreamEvent = TextDelta | UsageReport


class TokenCounter(Protocol):
    @abstractmethod
    def count_text(self, text: str) -> int: ...

    @abstractmethod
    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of a chat, including the per-message framing the model sees."""


class LLMProvider(Protocol):
    @abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        """An async generator of deltas, then at most one UsageReport at the end.

        Closing it (`aclose()`, or cancelling the task iterating it) MUST close the upstream connection at once.
        Raises ProviderUnavailable (cannot connect, not configured, 429/503 after bounded retries) or
        UpstreamError (error status, malformed stream, stall past the read timeout, abrupt close). Retries
        happen only before the first delta.
        """

    @property
    def default_max_tokens(self) -> int | None:
        """The output cap when the client sets none; None means the model's own `max_output_tokens`."""
        return None

    @property
    @abstractmethod
    def token_counter(self) -> TokenCounter:
        """Counts tokens the way this provider's models do (used when it reports no usage)."""

    def counter_for(self, upstream_model: str) -> TokenCounter:
        """The counter for one of its models (providers whose models tokenize differently override this)."""
        return self.token_counter


class ProviderRegistry(Protocol):
    @abstractmethod
    def get(self, provider: str) -> LLMProvider:
        """MUST raise ProviderUnavailable for a provider name that is unknown or not configured."""
