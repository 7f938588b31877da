"""What the `openai` and `anthropic` adapters must do against llama-server: shared by both suites."""

import asyncio
import time
from contextlib import aclosing

import httpx

from application.ports.llm import ChatMessage, CompletionOptions, CompletionRequest, LLMProvider, TextDelta
from domain.credits import Credits
from domain.errors import UpstreamError
from domain.pricing import Pricing, Usage
from tests.contract.conftest import LlamaServer, run

DETERMINISTIC = CompletionOptions(temperature=0)
STORY = [
    ChatMessage("system", "You are a storyteller."),
    ChatMessage("user", "Tell me a long story about a dragon who learns to bake bread."),
]


def request(max_tokens: int, messages: list[ChatMessage] = STORY) -> CompletionRequest:
    return CompletionRequest(
        upstream_model="smollm2-135m", messages=messages, max_tokens=max_tokens, options=DETERMINISTIC
    )


async def streams_text_and_reports_usage(provider: LLMProvider) -> None:
    outcome = await run(provider, request(16))
    assert outcome.error is None
    assert len(outcome.texts) > 1, "streamed in several deltas"
    assert outcome.text.strip()
    [usage] = outcome.usages
    assert usage.input_tokens > 10  # the system prompt, the question and the chat template
    assert 0 < usage.output_tokens <= 16


async def stops_at_max_tokens(provider: LLMProvider) -> None:
    outcome = await run(provider, request(5))
    assert outcome.error is None
    [usage] = outcome.usages
    assert usage.output_tokens == 5
    assert 1 <= len(outcome.texts) <= 5


CACHED_PRICING = Pricing(100, Credits.whole(20), Credits.whole(20), cached_input_credits=Credits.whole(2))


async def a_repeated_prompt_reports_its_cached_tokens(provider: LLMProvider, topic: str) -> None:
    """llama-server keeps a slot's prompt in its KV cache: asked the same again, it reads all but the last prompt
    token from it. The report still counts every prompt token, and the cached ones are billed at their price."""
    messages = [ChatMessage("system", "You are terse."), ChatMessage("user", f"Name one fact about {topic}.")]
    first, again = [await run(provider, request(3, messages)) for _ in range(2)]
    assert (first.error, again.error) == (None, None)
    [fresh], [cached] = first.usages, again.usages
    assert cached.input_tokens == fresh.input_tokens > 10
    assert 0 < cached.cached_input_tokens < cached.input_tokens
    assert (cached.cache_write_tokens, cached.reasoning_tokens) == (0, 0)
    usage = Usage(cached.input_tokens, cached.output_tokens, cached_input_tokens=cached.cached_input_tokens)
    uncached = cached.input_tokens - cached.cached_input_tokens
    # 20 credits per 100 tokens is 200,000 micro-credits a token; the cached ones, at 2 credits, 20,000
    expected = 200_000 * uncached + 20_000 * cached.cached_input_tokens + 200_000 * cached.output_tokens
    assert CACHED_PRICING.cost(usage) == Credits(expected)


async def slots_busy(http: httpx.AsyncClient, server: LlamaServer) -> bool:
    slots = (await http.get(f"{server.host}/slots", headers={"authorization": f"Bearer {server.api_key}"})).json()
    return any(slot["is_processing"] for slot in slots)


async def closing_the_stream_stops_generation(
    provider: LLMProvider, http: httpx.AsyncClient, server: LlamaServer
) -> None:
    """500 tokens take llama-server seconds; once the adapter's stream is closed its slot is free within moments."""
    async with aclosing(provider.stream(request(500))) as events:
        deltas = 0
        async for event in events:
            deltas += isinstance(event, TextDelta)
            if deltas == 3:
                break
        assert await slots_busy(http, server)
    closed_at = time.monotonic()
    while await slots_busy(http, server):
        assert time.monotonic() - closed_at < 2.0, "llama-server kept generating after the client went away"
        await asyncio.sleep(0.05)


async def a_wrong_key_is_an_upstream_error(provider: LLMProvider) -> None:
    outcome = await run(provider, request(4))
    assert isinstance(outcome.error, UpstreamError)  # 502 upstream_error: the gateway's credentials are wrong
    assert "401" in str(outcome.error)
    assert outcome.texts == []
