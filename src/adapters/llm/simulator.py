"""The built-in offline provider: deterministic pseudo-text, one token per delta, paced like a real model."""

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncGenerator, Sequence

import msgspec

from application.ports.llm import (
    ChatMessage,
    CompletionRequest,
    LLMProvider,
    StreamEvent,
    TextDelta,
    TokenCounter,
    UsageReport,
)

VOCABULARY = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod",
    "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "ad", "minim", "veniam",
    "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip",
)  # fmt: skip
DEFAULT_SCALE = 10
_SCALE_PHRASE = re.compile(r"from\s+0\s+to\s+(\d{1,9})", re.IGNORECASE)
_JSON_FRAME = ('{"score": ', ', "explanation": "', '"}')
_JSON_MIN_DELTAS = len(_JSON_FRAME) + 1  # the frame plus the score


DEFAULT_MAX_TOKENS = 64


class SimulatorProvider(LLMProvider):
    def __init__(self, counter: TokenCounter, token_delay_ms: int) -> None:
        self._counter = counter
        self._delay_s = token_delay_ms / 1000

    @property
    def token_counter(self) -> TokenCounter:
        return self._counter

    @property
    def default_max_tokens(self) -> int:
        return DEFAULT_MAX_TOKENS

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        rng = random.Random(_seed(request))  # noqa: S311 - pseudo-text, not a secret
        pieces = _json_pieces(rng, request) if request.options.json_output else _text_pieces(rng, request.max_tokens)
        for piece in pieces:
            await asyncio.sleep(self._delay_s)  # even at 0: stays cancellable and lets the loop breathe
            yield TextDelta(piece, tokens=1)
        yield UsageReport(input_tokens=self._counter.count_messages(request.messages), output_tokens=len(pieces))


def _seed(request: CompletionRequest) -> int:
    return int.from_bytes(hashlib.sha256(msgspec.json.encode(request)).digest()[:8], "big")


def _text_pieces(rng: random.Random, count: int) -> list[str]:
    return [f"{word} " for word in _words(rng, count)]


def _words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(VOCABULARY) for _ in range(count)]


def _json_pieces(rng: random.Random, request: CompletionRequest) -> list[str]:
    """`{"score": n, "explanation": "..."}` in exactly max_tokens deltas, or in one when max_tokens is too small."""
    score = rng.randint(0, _scale(request.messages))
    if request.max_tokens < _JSON_MIN_DELTAS:
        return [msgspec.json.encode({"score": score, "explanation": ""}).decode()]
    explanation = _words(rng, request.max_tokens - _JSON_MIN_DELTAS)
    opening, middle, closing = _JSON_FRAME
    return [opening, str(score), middle, *explanation[:1], *(f" {word}" for word in explanation[1:]), closing]


def _scale(messages: Sequence[ChatMessage]) -> int:
    """The N of the last "from 0 to N" in the prompt (a rendered `{scale}`), else DEFAULT_SCALE."""
    found = [match for message in messages for match in _SCALE_PHRASE.findall(message.text)]
    return int(found[-1]) if found else DEFAULT_SCALE
