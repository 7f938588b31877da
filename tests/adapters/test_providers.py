"""Provider adapters against a real fake upstream over loopback HTTP; the simulator; the approximate token counter."""

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.llm.anthropic_messages import AnthropicMessagesProvider
from adapters.llm.gemini import GeminiProvider
from adapters.llm.http_transport import upstream_client
from adapters.llm.openai_chat import OpenAIChatProvider
from adapters.llm.registry import StaticProviderRegistry
from adapters.llm.simulator import SimulatorProvider
from adapters.llm.sse_lines import SseProvider
from adapters.llm.token_counter import ApproximateTokenCounter
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    JsonOutput,
    LLMProvider,
    TextDelta,
    UsageReport,
)
from domain.errors import ProviderFailure, ProviderUnavailable, UpstreamError
from domain.routing import Failure
from tests.support.fake_upstream import (
    PROMPT_TOKENS,
    FakeUpstream,
    Script,
    fail_after,
    fail_before_first,
    garbage,
    huge_chunk,
    no_usage,
    serve_fake_upstream,
    stall,
    steady,
    truncated,
    with_usage,
)

KEY = "sk-test-canary-5f2c9a"
READ_TIMEOUT_S = 1.0
VENDORS = ("openai", "anthropic", "gemini")
COUNTER = ApproximateTokenCounter()
REQUEST = CompletionRequest(upstream_model="m-1", messages=[ChatMessage("user", "Say something.")], max_tokens=64)
JSON = CompletionOptions(json_output=JsonOutput())
Outcome = tuple[list[str], list[UsageReport], Exception | None]


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    timeout = httpx.Timeout(connect=2, read=READ_TIMEOUT_S, write=5, pool=5)
    async with upstream_client(timeout, max_connections=10, keepalive_seconds=30) as client:
        yield client


def make_provider(vendor: str, http: httpx.AsyncClient, host: str, api_key: str | None = KEY) -> SseProvider:
    if vendor == "openai":
        return OpenAIChatProvider(http, f"{host}/v1", api_key, COUNTER)
    if vendor == "anthropic":
        return AnthropicMessagesProvider(http, host, api_key, COUNTER)
    return GeminiProvider(http, host, api_key, COUNTER)


async def run(provider: LLMProvider, request: CompletionRequest = REQUEST) -> Outcome:
    """The deltas and usage reports streamed, then the domain error that ended the stream, if any."""
    texts: list[str] = []
    usages: list[UsageReport] = []
    try:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                texts.append(event.text)
            else:
                usages.append(event)
    except (UpstreamError, ProviderUnavailable) as error:
        return texts, usages, error
    return texts, usages, None


async def eventually(condition: Callable[[], bool], within_s: float, poll_s: float = 0.005) -> None:
    for _ in range(int(within_s / poll_s)):
        if condition():
            return
        await asyncio.sleep(poll_s)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


vendors = pytest.mark.parametrize("vendor", VENDORS)


# --- HTTP adapters: happy path and wire format ---


@vendors
async def test_steady_stream_yields_the_sent_text_then_the_reported_usage(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(steady(5))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert error is None
    assert "".join(texts) == upstream.script.text
    assert usages == [UsageReport(input_tokens=PROMPT_TOKENS, output_tokens=5)]


@vendors
async def test_a_finished_stream_leaves_its_connection_to_the_next_request(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(steady(3))
    provider = make_provider(vendor, http, upstream.base_url)
    for _ in range(2):
        assert (await run(provider))[2] is None
    first, second = upstream.requests[-2:]
    assert first.client_port is not None
    assert second.client_port == first.client_port


CHAT = CompletionRequest(
    upstream_model="m-1",
    messages=[
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello"),
        ChatMessage("user", "Rate this as JSON"),
    ],
    max_tokens=16,
    options=CompletionOptions(temperature=0.5, json_output=JsonOutput()),
)
EXPECTED_WIRE = {
    "openai": (
        "/v1/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {
            "model": "m-1",
            "messages": [{"role": m.role, "content": m.content} for m in CHAT.messages],
            "max_tokens": 16,
            "temperature": 0.5,
            "stream": True,
            "stream_options": {"include_usage": True},
            "response_format": {"type": "json_object"},
        },
    ),
    "anthropic": (
        "/v1/messages",
        {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
        {
            "model": "m-1",
            "max_tokens": 16,
            "system": "Be brief.",
            "messages": [{"role": m.role, "content": m.content} for m in CHAT.messages[1:]],
            "temperature": 0.5,
            "stream": True,
            "tools": [
                {"name": "json_answer", "description": "Answer with this JSON.", "input_schema": {"type": "object"}}
            ],
            "tool_choice": {"type": "tool", "name": "json_answer"},
        },
    ),
    "gemini": (
        "/v1beta/models/m-1:streamGenerateContent",
        {"x-goog-api-key": KEY},
        {
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello"}]},
                {"role": "user", "parts": [{"text": "Rate this as JSON"}]},
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"maxOutputTokens": 16, "temperature": 0.5, "responseMimeType": "application/json"},
        },
    ),
}


@vendors
async def test_request_is_what_the_vendor_expects_and_the_key_is_only_in_its_header(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(steady(1))
    assert (await run(make_provider(vendor, http, upstream.base_url), CHAT))[2] is None
    (recorded,) = upstream.requests
    path, auth_headers, body = EXPECTED_WIRE[vendor]
    assert recorded.path == path
    assert recorded.query == ("alt=sse" if vendor == "gemini" else "")
    assert recorded.body == body
    assert recorded.headers["content-type"] == "application/json"
    assert {name: recorded.headers.get(name) for name in auth_headers} == auth_headers
    elsewhere = [value for name, value in recorded.headers.items() if name not in auth_headers]
    assert KEY not in json.dumps([recorded.path, recorded.query, recorded.body, elsewhere])


async def test_openai_without_a_key_sends_no_authorization(upstream: FakeUpstream, http: httpx.AsyncClient) -> None:
    upstream.use(steady(1))
    assert (await run(make_provider("openai", http, upstream.base_url, api_key=None)))[2] is None
    assert "authorization" not in upstream.requests[0].headers


@pytest.mark.parametrize("vendor", ["anthropic", "gemini"])
async def test_a_vendor_without_a_key_is_unavailable_and_not_called(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(steady(1))
    _, _, error = await run(make_provider(vendor, http, upstream.base_url, api_key=None))
    assert isinstance(error, ProviderUnavailable)
    assert upstream.requests == []


@vendors
async def test_without_usage_none_is_reported(upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str) -> None:
    upstream.use(no_usage(4))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert (len(texts), usages, error) == (4, [], None)


@vendors
@pytest.mark.parametrize(
    ("input_tokens", "output_tokens"), [(-1, 5), (5, -1), (10**12, 5), (5, 10_000_001), (5, 2.5), ("7", 5), (True, 5)]
)
async def test_implausible_usage_is_ignored(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, input_tokens: object, output_tokens: object
) -> None:
    upstream.use(with_usage(2, input_tokens, output_tokens))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert (len(texts), usages, error) == (2, [], None)


# --- each vendor's usage shape, as its API sends it (recorded streams) ---

OPENAI_CACHED_REASONING = (
    'data: {"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1767259800,"model":"o4-mini-2025-04-16",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}]}',
    'data: {"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1767259800,"model":"o4-mini-2025-04-16",'
    '"choices":[{"index":0,"delta":{"content":"Paper clips."},"finish_reason":null}]}',
    'data: {"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1767259800,"model":"o4-mini-2025-04-16",'
    '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
    'data: {"id":"chatcmpl-C1","object":"chat.completion.chunk","created":1767259800,"model":"o4-mini-2025-04-16",'
    '"choices":[],"usage":{"prompt_tokens":1396,"completion_tokens":212,"total_tokens":1608,'
    '"prompt_tokens_details":{"cached_tokens":1280,"audio_tokens":0},"completion_tokens_details":'
    '{"reasoning_tokens":192,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}',
    "data: [DONE]",
)
OPENAI_WITHOUT_DETAILS = (
    'data: {"choices":[{"index":0,"delta":{"content":"Paper clips."},"finish_reason":"stop"}]}',
    'data: {"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":3,"total_tokens":23}}',
    "data: [DONE]",
)
ANTHROPIC_CACHE_READ_AND_WRITE = (
    "event: message_start",
    'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
    '"model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,'
    '"cache_creation_input_tokens":2048,"cache_read_input_tokens":1800,"cache_creation":'
    '{"ephemeral_5m_input_tokens":2048,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}',
    "event: content_block_start",
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}',
    "event: content_block_delta",
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Clips hold."}}',
    "event: content_block_stop",
    'data: {"type":"content_block_stop","index":0}',
    "event: ping",
    'data: {"type": "ping"}',
    "event: content_block_start",
    'data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
    "event: content_block_delta",
    'data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Paper clips."}}',
    "event: content_block_stop",
    'data: {"type":"content_block_stop","index":1}',
    "event: message_delta",
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":'
    '{"input_tokens":12,"cache_creation_input_tokens":2048,"cache_read_input_tokens":1800,"output_tokens":15}}',
    "event: message_stop",
    'data: {"type":"message_stop"}',
)
# llama-server's Anthropic endpoint on a repeated prompt: the prompt's counts only in message_start.
ANTHROPIC_PROMPT_COUNTS_AT_START_ONLY = (
    "event: message_start",
    'data: {"type":"message_start","message":{"id":"chatcmpl-1","type":"message","role":"assistant","content":[],'
    '"model":"smollm2-135m","stop_reason":null,"stop_sequence":null,"usage":{"cache_read_input_tokens":41,'
    '"input_tokens":1,"output_tokens":0}}}',
    "event: content_block_delta",
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Paper clips."}}',
    "event: message_delta",
    'data: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},'
    '"usage":{"output_tokens":4}}',
    "event: message_stop",
    'data: {"type":"message_stop"}',
)
GEMINI_CACHED_AND_THOUGHTS = (
    'data: {"candidates":[{"content":{"parts":[{"text":"Paper"}],"role":"model"},"index":0}],"usageMetadata":'
    '{"promptTokenCount":2065,"candidatesTokenCount":1,"totalTokenCount":2100,"cachedContentTokenCount":2048,'
    '"promptTokensDetails":[{"modality":"TEXT","tokenCount":2065}],"cacheTokensDetails":[{"modality":"TEXT",'
    '"tokenCount":2048}],"thoughtsTokenCount":34},"modelVersion":"gemini-2.5-flash","responseId":"r1"}',
    'data: {"candidates":[{"content":{"parts":[{"text":" clips."}],"role":"model"},"finishReason":"STOP","index":0}],'
    '"usageMetadata":{"promptTokenCount":2065,"candidatesTokenCount":3,"totalTokenCount":2102,'
    '"cachedContentTokenCount":2048,"promptTokensDetails":[{"modality":"TEXT","tokenCount":2065}],'
    '"thoughtsTokenCount":34},"modelVersion":"gemini-2.5-flash","responseId":"r1"}',
)
GEMINI_WITHOUT_CACHE_OR_THOUGHTS = (
    'data: {"candidates":[{"content":{"parts":[{"text":"Paper clips."}],"role":"model"},"finishReason":"STOP"}],'
    '"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":3,"totalTokenCount":23}}',
)


@pytest.mark.parametrize(
    ("vendor", "lines", "expected"),
    [
        ("openai", OPENAI_CACHED_REASONING, UsageReport(1396, 212, cached_input_tokens=1280, reasoning_tokens=192)),
        ("openai", OPENAI_WITHOUT_DETAILS, UsageReport(20, 3)),
        (
            "anthropic",
            ANTHROPIC_CACHE_READ_AND_WRITE,
            UsageReport(12 + 1800 + 2048, 15, cached_input_tokens=1800, cache_write_tokens=2048),
        ),
        ("anthropic", ANTHROPIC_PROMPT_COUNTS_AT_START_ONLY, UsageReport(42, 4, cached_input_tokens=41)),
        (
            "gemini",
            GEMINI_CACHED_AND_THOUGHTS,
            UsageReport(2065, 3 + 34, cached_input_tokens=2048, reasoning_tokens=34),
        ),
        ("gemini", GEMINI_WITHOUT_CACHE_OR_THOUGHTS, UsageReport(20, 3)),
    ],
)
async def test_each_vendors_usage_shape_is_mapped_exactly(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, lines: tuple[str, ...], expected: UsageReport
) -> None:
    """Prompt totals include the cached and cache-written tokens; output totals include the reasoning ones."""
    upstream.use(garbage(lines))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert ("".join(texts), usages, error) == ("Paper clips.", [expected], None)


@pytest.mark.parametrize(
    ("vendor", "usage"),
    [
        ("openai", '{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":11}}'),
        ("openai", '{"prompt_tokens":10,"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":4}}'),
        ("openai", '{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":-1}}'),
        ("openai", '{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":"5"}}'),
        ("anthropic", '{"input_tokens":1,"cache_read_input_tokens":-1,"output_tokens":3}'),
        ("anthropic", '{"input_tokens":1,"cache_creation_input_tokens":true,"output_tokens":3}'),
        ("anthropic", '{"input_tokens":1,"cache_read_input_tokens":false,"output_tokens":3}'),
        ("gemini", '{"promptTokenCount":10,"candidatesTokenCount":3,"thoughtsTokenCount":false}'),
        ("anthropic", '{"input_tokens":1,"cache_read_input_tokens":10000000,"output_tokens":3}'),
        ("gemini", '{"promptTokenCount":10,"candidatesTokenCount":3,"cachedContentTokenCount":11}'),
        ("gemini", '{"promptTokenCount":10,"candidatesTokenCount":3,"thoughtsTokenCount":-2}'),
        ("gemini", '{"promptTokenCount":10,"thoughtsTokenCount":2}'),
    ],
)
async def test_a_usage_whose_parts_are_implausible_is_not_trusted(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, usage: str
) -> None:
    """Not a part, nor the totals: the run counts the tokens itself."""
    lines = {
        "openai": ('data: {"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}],"usage":' + usage + "}",),
        "anthropic": (
            'data: {"type":"message_start","message":{"usage":' + usage + "}}",
            'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}',
            'data: {"type":"message_stop"}',
        ),
        "gemini": (
            'data: {"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}],"usageMetadata":'
            + usage
            + "}",
        ),
    }[vendor]
    upstream.use(garbage(lines))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert (texts, usages, error) == (["a"], [], None)


# --- failures before the first token: bounded retries ---


@vendors
@pytest.mark.parametrize("status", [400, 404, 500, 502])
async def test_an_error_status_is_an_upstream_error_without_retry(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, status: int
) -> None:
    upstream.use(fail_before_first(status))
    _, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)
    assert len(upstream.requests) == 1


@vendors
@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_credentials_are_an_upstream_error_that_does_not_leak_the_key(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, status: int
) -> None:
    upstream.use(fail_before_first(status))
    _, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)
    assert "credentials" in error.detail
    assert KEY not in repr(error)
    assert len(upstream.requests) == 1


@vendors
@pytest.mark.parametrize("status", [429, 503])
async def test_overload_is_retried_then_unavailable(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, status: int
) -> None:
    upstream.use(fail_before_first(status))
    _, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, ProviderUnavailable)
    assert len(upstream.requests) == 3


@vendors
async def test_a_refused_connection_is_retried_then_unavailable(http: httpx.AsyncClient, vendor: str) -> None:
    started = time.monotonic()
    _, _, error = await run(make_provider(vendor, http, closed_port_url()))
    assert isinstance(error, ProviderUnavailable)
    assert 0.4 <= time.monotonic() - started < 2


@vendors
@pytest.mark.parametrize(
    ("script", "failure", "retry_after"),
    [
        (Script(status=429, retry_after=7), Failure.RATE_LIMITED, timedelta(seconds=7)),
        (Script(status=429), Failure.RATE_LIMITED, None),
        (fail_before_first(500), Failure.SERVER_ERROR, None),
        (fail_before_first(503), Failure.SERVER_ERROR, None),
        (fail_before_first(400), Failure.CLIENT_ERROR, None),
        (fail_before_first(401), Failure.CLIENT_ERROR, None),
        (Script(ending="abort"), Failure.CONNECT, None),
        (truncated(0), Failure.BROKEN, None),
    ],
)
async def test_a_failure_says_how_the_deployment_failed_for_routing(
    upstream: FakeUpstream,
    http: httpx.AsyncClient,
    vendor: str,
    script: Script,
    failure: Failure,
    retry_after: timedelta | None,
) -> None:
    upstream.use(script)
    _, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, ProviderFailure)
    assert (error.failure, error.retry_after) == (failure, retry_after)


async def test_a_refused_connection_is_a_connect_failure(http: httpx.AsyncClient) -> None:
    _, _, error = await run(make_provider("openai", http, closed_port_url()))
    assert isinstance(error, ProviderFailure)
    assert error.failure is Failure.CONNECT


# --- failures after the first token: never retried ---


@vendors
async def test_an_abrupt_close_after_k_chunks_gives_k_deltas_then_an_upstream_error(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(fail_after(3))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)
    assert (texts, usages) == (list(upstream.script.texts), [])
    assert len(upstream.requests) == 1


@vendors
async def test_a_clean_end_without_the_end_marker_is_an_upstream_error(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(truncated(2))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)
    assert (len(texts), usages) == (2, [])


@vendors
async def test_a_stalled_stream_fails_within_the_read_timeout_plus_one_second(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(stall(after_n=2))
    started = time.monotonic()
    texts, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)
    assert len(texts) == 2
    assert READ_TIMEOUT_S - 0.05 <= time.monotonic() - started <= READ_TIMEOUT_S + 1
    await eventually(lambda: upstream.requests[0].disconnected_at is not None, within_s=0.5)
    assert upstream.requests[0].disconnected_at is not None


@vendors
async def test_a_line_over_one_mebibyte_is_an_upstream_error(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(huge_chunk(2 * 1024 * 1024))
    texts, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)
    assert texts == []


@vendors
@pytest.mark.parametrize("line", ["data: not json", "data: {", "data: [1, 2]", 'data: {"choices": 5, "candidates": 5}'])
async def test_a_data_line_that_is_not_a_json_event_is_an_upstream_error(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, line: str
) -> None:
    upstream.use(garbage([line]))
    _, _, error = await run(make_provider(vendor, http, upstream.base_url))
    assert isinstance(error, UpstreamError)


GARBAGE_LINE = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30).map(lambda text: f"data: {text}"),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
        max_leaves=8,
    ).map(lambda value: f"data: {json.dumps(value)}"),
    st.sampled_from(
        [
            "",
            ": keep-alive",
            "event: error",
            "data: [DONE]",
            'data: {"choices": [{"delta": {"content": "a"}, "finish_reason": "stop"}]}',
            'data: {"choices": [], "usage": {"prompt_tokens": -4, "completion_tokens": 1e30}}',
            'data: {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "a"}}',
            'data: {"type": "message_stop"}',
            'data: {"type": "error", "error": {"type": "overloaded_error"}}',
            'data: {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}]}',
            'data: {"usageMetadata": {"promptTokenCount": "x"}}',
        ]
    ),
)


@vendors
@settings(max_examples=30, deadline=None)
@given(lines=st.lists(GARBAGE_LINE, max_size=8))
async def test_any_garbage_stream_ends_in_a_domain_error_or_a_well_formed_answer(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, lines: list[str]
) -> None:
    upstream.use(garbage(lines))
    texts, usages, error = await run(make_provider(vendor, http, upstream.base_url))
    assert error is not None or len(usages) <= 1
    assert all(texts)
    for usage in usages:
        assert all(0 <= n <= 10_000_000 for n in (usage.input_tokens, usage.output_tokens))
        assert 0 <= usage.cached_input_tokens + usage.cache_write_tokens <= usage.input_tokens
        assert 0 <= usage.reasoning_tokens <= usage.output_tokens


async def test_an_anthropic_overload_event_before_the_first_token_is_unavailable(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    upstream.use(garbage(["event: error", 'data: {"type": "error", "error": {"type": "overloaded_error"}}']))
    _, _, error = await run(make_provider("anthropic", http, upstream.base_url))
    assert isinstance(error, ProviderUnavailable)


async def test_an_anthropic_overload_event_after_a_token_is_an_upstream_error(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    delta = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}
    overload = {"type": "error", "error": {"type": "overloaded_error"}}
    upstream.use(garbage([f"data: {json.dumps(delta)}", f"data: {json.dumps(overload)}"]))
    texts, _, error = await run(make_provider("anthropic", http, upstream.base_url))
    assert texts == ["Hi"]
    assert isinstance(error, UpstreamError)
    assert not isinstance(error, ProviderUnavailable)


# --- closing the stream closes the upstream connection (M5) ---


@vendors
async def test_closing_the_stream_after_three_deltas_disconnects_the_upstream_within_500_ms(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(steady(50, delay_s=0.02))
    stream = make_provider(vendor, http, upstream.base_url).stream(REQUEST)
    for _ in range(3):
        assert isinstance(await anext(stream), TextDelta)
    closed_at = time.monotonic()
    await stream.aclose()
    recorded = upstream.requests[0]
    await eventually(lambda: recorded.disconnected_at is not None, within_s=0.5)
    assert recorded.disconnected_at is not None
    assert recorded.disconnected_at - closed_at <= 0.5
    assert recorded.chunks_sent < 50


@vendors
async def test_cancelling_the_consumer_disconnects_the_upstream(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str
) -> None:
    upstream.use(steady(50, delay_s=0.02))
    received: list[str] = []

    async def consume() -> None:
        async for event in make_provider(vendor, http, upstream.base_url).stream(REQUEST):
            assert isinstance(event, TextDelta)
            received.append(event.text)

    task = asyncio.create_task(consume())
    await eventually(lambda: len(received) >= 3, within_s=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    recorded = upstream.requests[0]
    await eventually(lambda: recorded.disconnected_at is not None, within_s=0.5)
    assert recorded.disconnected_at is not None


async def test_the_fake_upstream_answers_a_non_streaming_openai_request(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    upstream.use(steady(3))
    response = await http.post(f"{upstream.base_url}/v1/chat/completions", json={"model": "m-1", "messages": []})
    body = response.json()
    assert body["choices"][0]["message"]["content"] == upstream.script.text
    assert body["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 3}


# --- simulator ---


def simulator(delay_ms: int = 0) -> SimulatorProvider:
    return SimulatorProvider(COUNTER, token_delay_ms=delay_ms)


@pytest.mark.parametrize("max_tokens", [1, 7, 64])
async def test_the_simulator_streams_exactly_max_tokens_deltas_then_usage(max_tokens: int) -> None:
    request = CompletionRequest("sim", [ChatMessage("user", "Tell me a story.")], max_tokens=max_tokens)
    texts, usages, error = await run(simulator(), request)
    assert error is None
    assert len(texts) == max_tokens
    assert usages == [UsageReport(input_tokens=COUNTER.count_messages(request.messages), output_tokens=max_tokens)]


async def test_the_simulator_is_deterministic_per_request() -> None:
    first = await run(simulator(), REQUEST)
    again = await run(simulator(), REQUEST)
    other = await run(simulator(), CompletionRequest("m-1", [ChatMessage("user", "Something else.")], max_tokens=64))
    assert first == again
    assert first[0] != other[0]


@settings(max_examples=40, deadline=None)
@given(max_tokens=st.integers(1, 200), scale=st.one_of(st.none(), st.integers(1, 1000)))
async def test_the_simulator_answers_json_with_a_score_within_the_scale(max_tokens: int, scale: int | None) -> None:
    prompt = "Compare the texts." + ("" if scale is None else f" Answer with a score from 0 to {scale}.")
    request = CompletionRequest("sim", [ChatMessage("user", prompt)], max_tokens=max_tokens, options=JSON)
    texts, usages, error = await run(simulator(), request)
    answer = json.loads("".join(texts))
    assert error is None
    assert set(answer) == {"score", "explanation"}
    assert isinstance(answer["score"], int)
    assert 0 <= answer["score"] <= (10 if scale is None else scale)
    assert isinstance(answer["explanation"], str)
    assert len(texts) == (max_tokens if max_tokens >= 4 else 1)
    assert usages[0].output_tokens == len(texts)


async def test_cancelling_a_simulated_stream_stops_it() -> None:
    received: list[str] = []

    async def consume() -> None:
        async for event in simulator(delay_ms=10).stream(CompletionRequest("sim", REQUEST.messages, max_tokens=1000)):
            assert isinstance(event, TextDelta)
            received.append(event.text)

    task = asyncio.create_task(consume())
    await eventually(lambda: len(received) >= 3, within_s=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(received) < 20


async def test_a_zero_delay_simulation_leaves_the_loop_responsive() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await run(simulator(delay_ms=0), CompletionRequest("sim", REQUEST.messages, max_tokens=200))
    ticker.cancel()
    assert ticks >= 100


# --- token counter and registry ---


def test_the_token_counter_counts_words_punctuation_and_long_words() -> None:
    assert COUNTER.count_text("") == 0
    assert COUNTER.count_text("Hello, world!") == 6  # Hello=2 ,=1 world=2 !=1
    assert COUNTER.count_text("a an the") == 3
    assert COUNTER.count_text("internationalization") == 5


@given(st.text(), st.text())
def test_the_token_counter_adds_up_over_words(left: str, right: str) -> None:
    assert COUNTER.count_text(f"{left} {right}") == COUNTER.count_text(left) + COUNTER.count_text(right)


def test_counting_a_chat_adds_framing_per_message() -> None:
    chat = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]
    assert COUNTER.count_messages(chat) == (4 + 4) + (1 + 4) + 2  # Be=1 brief=2 .=1; Hi=1
    assert COUNTER.count_messages([ChatMessage("user", "")]) > 0


def test_the_registry_serves_configured_providers_and_refuses_others() -> None:
    sim = simulator()
    registry = StaticProviderRegistry({"simulator": sim})
    assert registry.get("simulator") is sim
    with pytest.raises(ProviderUnavailable, match="'openai' is not configured"):
        registry.get("openai")


GEMINI_PATH = "/v1beta/models/m-1:streamGenerateContent?alt=sse"


@pytest.mark.parametrize(
    ("vendor", "public_url", "base_url", "proxied_url"),
    [
        (
            OpenAIChatProvider,
            "https://api.openai.com/v1/chat/completions",
            "http://proxy.internal/v1",
            "http://proxy.internal/v1/chat/completions",
        ),
        (
            AnthropicMessagesProvider,
            "https://api.anthropic.com/v1/messages",
            "http://proxy.internal",
            "http://proxy.internal/v1/messages",
        ),
        (
            GeminiProvider,
            f"https://generativelanguage.googleapis.com{GEMINI_PATH}",
            "http://proxy.internal",
            f"http://proxy.internal{GEMINI_PATH}",
        ),
    ],
)
async def test_a_vendor_serves_once_its_key_or_base_url_is_set(
    vendor: type[SseProvider], public_url: str, base_url: str, proxied_url: str
) -> None:
    """No key and no base URL: not configured. A key alone: the vendor's own endpoint. A base URL: that one."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(400)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert vendor.configured(client, COUNTER, api_key=None, base_url=None) is None
        assert vendor.configured(client, COUNTER, api_key=None, base_url=base_url) is not None
        for configured_url in (None, base_url):
            provider = vendor.configured(client, COUNTER, api_key=KEY, base_url=configured_url)
            assert provider is not None
            await run(provider)
    assert asked == [public_url, proxied_url]


async def test_the_local_provider_serves_only_where_a_server_is_named() -> None:
    async with httpx.AsyncClient() as client:
        assert OpenAIChatProvider.local(client, COUNTER, base_url=None, api_key="k", refuses=frozenset()) is None
        assert (
            OpenAIChatProvider.local(
                client, COUNTER, base_url="http://127.0.0.1:9/v1", api_key=None, refuses=frozenset()
            )
            is not None
        )
    registry = StaticProviderRegistry({"simulator": simulator(), "local": None})
    with pytest.raises(ProviderUnavailable, match="'local' is not configured"):
        registry.get("local")


async def test_a_pooled_connection_closed_before_any_answer_is_retried_on_a_fresh_one() -> None:
    """llama-server closes its connection after a stream; httpx may hand that dead connection to the next request."""
    calls = 0
    body = b'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        texts, _, error = await run(OpenAIChatProvider(client, "http://upstream/v1", KEY, COUNTER))
    assert (texts, error, calls) == (["hi"], None, 2)
