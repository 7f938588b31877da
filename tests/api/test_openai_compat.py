"""The official `openai` SDK against `/v1`: same auth, same billing, OpenAI shapes and errors."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from litestar import Litestar
from openai.types import CompletionUsage
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.llm.token_counter import IMAGE_TOKENS
from domain.credits import Credits
from domain.pricing import Pricing, Usage
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.adapters.test_provider_tools import OPENAI_TOOL_STREAM
from tests.support.api import admin_token, bearer, client_token, funded_client_token, upstream_model_client
from tests.support.audit import ledger_violations
from tests.support.fake_upstream import FakeUpstream, garbage, serve_fake_upstream
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

HELLO = [{"role": "user", "content": "Say hello"}]
DR14 = Pricing(100, Credits.whole(20), Credits.whole(20))
GEMINI_FLASH = Pricing(100, Credits.whole(1), Credits.whole(1))


@pytest.fixture
async def base_url(app: Litestar) -> AsyncIterator[str]:
    async with serve_on_loopback(app) as url:
        yield url


async def _sdk(base_url: str, settings: Settings, username: str, amount: str | None = "50") -> openai.AsyncOpenAI:
    async with httpx.AsyncClient(base_url=base_url) as http:
        if amount is None:
            token = await client_token(http, username)
        else:
            token = await funded_client_token(http, settings, username, amount)
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=token, max_retries=0)


async def test_models_are_listed_in_openai_shape(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk1", amount=None)
    models = [model.id async for model in sdk.models.list()]
    assert {"dr14", "gemini-flash"} <= set(models)


async def test_a_non_streaming_completion(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk2")
    completion = await sdk.chat.completions.create(model="dr14", messages=HELLO, max_tokens=7)  # type: ignore[arg-type]
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 7
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0
    # dr14: 100 tokens = 20 credits; the billed cost, as a decimal string
    assert (completion.usage.model_extra or {})["cost"] == str(DR14.cost(Usage(completion.usage.prompt_tokens, 7)))


async def test_a_streaming_completion_with_usage(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk3")
    stream = await sdk.chat.completions.create(
        model="gemini-flash",
        messages=HELLO,  # type: ignore[arg-type]
        max_completion_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 6
    assert (usage.model_extra or {})["cost"] == str(GEMINI_FLASH.cost(Usage(usage.prompt_tokens, 6)))


async def test_no_balance_is_an_openai_style_error(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk4", amount=None)
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk.chat.completions.create(model="dr14", messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.status_code == 402
    assert raised.value.body == {
        "message": "The balance does not cover this request.",
        "type": "insufficient_quota",
        "code": "insufficient_balance",
        "param": None,
    }


async def test_a_bad_token_and_an_unknown_model_are_openai_errors(base_url: str, settings: Settings) -> None:
    anonymous = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await anonymous.chat.completions.create(model="dr14", messages=HELLO)  # type: ignore[arg-type]
    sdk = await _sdk(base_url, settings, "sdk5")
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.chat.completions.create(model="nope", messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.code == "model_not_found"


async def test_unknown_openai_fields_are_tolerated(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk6")
    completion = await sdk.chat.completions.create(
        model="dr14",
        messages=[{"role": "developer", "content": "Be brief"}, *HELLO],  # type: ignore[list-item]
        max_tokens=3,
        user="someone",
        seed=4,
        n=1,
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "days", "unit"],
        },
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris for the next days?"}]


def _valid_weather(arguments: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(arguments)
    assert set(parsed) == {"city", "days", "unit"}
    assert isinstance(parsed["city"], str)
    assert 1 <= parsed["days"] <= 7
    assert parsed["unit"] in {"celsius", "fahrenheit"}
    return parsed


async def _billed_exactly(sdk: openai.AsyncOpenAI, engine: AsyncEngine, usages: list[CompletionUsage]) -> None:
    """Each generation is stored with the usage the SDK saw, charged its price, and the balance is the ledger's."""
    async with httpx.AsyncClient(base_url=str(sdk.base_url).removesuffix("/v1/")) as http:
        history = (await http.get("/api/v1/generations", headers=bearer(sdk.api_key))).json()["items"]
    stored = sorted((g["usage"]["input_tokens"], g["usage"]["output_tokens"], g["cost"]) for g in history)
    expected = [(u.prompt_tokens, u.completion_tokens, str(DR14.cost(_usage(u)))) for u in usages]
    assert stored == sorted(expected)
    assert await ledger_violations(engine) == []
    assert await generation_violations(engine) == []


def _usage(usage: CompletionUsage) -> Usage:
    return Usage(usage.prompt_tokens, usage.completion_tokens)


async def test_a_tool_calling_round_trip(base_url: str, settings: Settings, clean_db: AsyncEngine) -> None:
    """request with tools → tool_calls (the simulator's deterministic tool mode) → tool message → text answer."""
    sdk = await _sdk(base_url, settings, "tools1", amount="1000")
    first = await sdk.chat.completions.create(
        model="dr14",
        messages=WEATHER_QUESTION,
        tools=[WEATHER_TOOL],
        max_tokens=40,  # type: ignore[list-item,arg-type]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    _valid_weather(call.function.arguments)
    assert first.usage is not None
    assert 0 < first.usage.completion_tokens < 40
    answer = await sdk.chat.completions.create(
        model="dr14",
        messages=[
            *WEATHER_QUESTION,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"forecast": "sunny"}'},
        ],  # type: ignore[list-item]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_tokens=5,
    )
    assert answer.choices[0].message.content
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 5
    assert answer.usage.prompt_tokens > first.usage.prompt_tokens
    await _billed_exactly(sdk, clean_db, [first.usage, answer.usage])


async def test_a_streamed_tool_call_relays_openai_deltas(
    base_url: str, settings: Settings, clean_db: AsyncEngine
) -> None:
    sdk = await _sdk(base_url, settings, "tools2", amount="1000")
    request: dict[str, Any] = {
        "model": "dr14",
        "messages": WEATHER_QUESTION,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 40,
    }
    stream = await sdk.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [call for delta in deltas for call in delta.tool_calls or []]
    assert deltas[0].role == "assistant"
    assert len(calls) > 3  # the arguments come in fragments
    head, *rest = calls
    assert head.index == 0
    assert head.type == "function"
    assert head.id is not None
    assert head.function is not None
    assert head.function.name == "get_weather"
    assert all(c.index == 0 and c.id is None and c.function and c.function.name is None for c in rest)
    arguments = "".join(c.function.arguments or "" for c in calls if c.function)
    _valid_weather(arguments)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == len(calls)  # the simulator: one token per fragment, name included
    same = await sdk.chat.completions.create(**request)  # the same request, not streamed: the same call
    (call,) = same.choices[0].message.tool_calls or []
    assert (call.id, call.function.arguments) == (head.id, arguments)
    assert same.usage == usage
    await _billed_exactly(sdk, clean_db, [usage, usage])


async def test_json_schema_output_is_valid_against_its_schema(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "tools3", amount="1000")
    schema = WEATHER_TOOL["function"]["parameters"]
    completion = await sdk.chat.completions.create(
        model="gemini-flash",
        messages=WEATHER_QUESTION,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}},
        max_tokens=50,
    )
    _valid_weather(completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"


async def test_stop_sequences_end_the_answer(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "tools4", amount="1000")
    full = await sdk.chat.completions.create(model="dr14", messages=HELLO, max_tokens=30, seed=7)  # type: ignore[arg-type]
    text = full.choices[0].message.content or ""
    stop = text.split()[3]
    cut = await sdk.chat.completions.create(model="dr14", messages=HELLO, max_tokens=30, seed=7, stop=[stop, "zzz"])  # type: ignore[arg-type]
    kept = text[: text.index(stop)]  # the same answer (a stop sequence only ends it), up to its first stop
    assert cut.choices[0].message.content == kept
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage is not None
    assert cut.usage.completion_tokens == len(kept.split())  # one token a word, the last one maybe cut


async def test_an_image_part_reaches_the_simulator(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "tools5", amount="1000")
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    completion = await sdk.chat.completions.create(
        model="dr14",
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}],  # type: ignore[list-item]
        max_tokens=3,
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > IMAGE_TOKENS


async def test_malformed_tool_messages_are_validation_errors(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "tools6", amount="1000")
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "not json"}}
    cases = [
        ([*WEATHER_QUESTION, {"role": "assistant", "tool_calls": [call]}], "messages[1].tool_calls[0].arguments"),
        ([*WEATHER_QUESTION, {"role": "tool", "tool_call_id": "call_9", "content": "x"}], "messages[1].tool_call_id"),
    ]
    for messages, field in cases:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await sdk.chat.completions.create(model="dr14", messages=messages, tools=[WEATHER_TOOL])  # type: ignore[arg-type,list-item]
        assert raised.value.code == "validation_error"
        assert raised.value.param == field
    with pytest.raises(openai.UnprocessableEntityError):
        await sdk.chat.completions.create(
            model="dr14",
            messages=HELLO,
            tool_choice={"type": "function", "function": {"name": "nope"}},
            tools=[WEATHER_TOOL],  # type: ignore[arg-type,list-item]
        )


@pytest.fixture
async def gemini_base_url(settings: Settings, clean_db: AsyncEngine) -> AsyncIterator[str]:
    """The gateway with a `gemini` provider (pointing at nothing: refusals happen before any upstream call)."""
    app = create_app(
        replace_settings(settings, providers={"gemini_base_url": "http://127.0.0.1:9", "gemini_api_key": "g-key"})
    )
    async with serve_on_loopback(app) as url:
        yield url


async def test_a_parameter_the_provider_cannot_honour_is_refused_and_costs_nothing(
    gemini_base_url: str, settings: Settings, clean_db: AsyncEngine
) -> None:
    sdk = await _sdk(gemini_base_url, settings, "tools7", amount="1000")
    async with httpx.AsyncClient(base_url=gemini_base_url) as http:
        admin = await admin_token(http, settings, username="tools7-root")
        model = {
            "id": "gem",
            "provider": "gemini",
            "upstream_model": "gemini-2.5-flash",
            "pricing": {"unit_tokens": 100, "input_credits": "1", "output_credits": "1"},
            "max_output_tokens": 100,
        }
        assert (await http.post("/api/v1/admin/models", json=model, headers=bearer(admin))).status_code == 201
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"parallel_tool_calls": False, "tools": [WEATHER_TOOL]}, "parallel_tool_calls"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "?"}, image]}]}, "image_urls"),
    ]
    for extra, parameter in refused:
        with pytest.raises(openai.BadRequestError) as raised:
            await sdk.chat.completions.create(**{"model": "gem", "messages": HELLO, **extra})
        assert raised.value.body == {
            "message": f"`{parameter}` is not supported by model 'gem'.",
            "type": "invalid_request_error",
            "code": "unsupported_parameter",
            "param": None,
        }
    assert await ledger_violations(clean_db) == []
    async with httpx.AsyncClient(base_url=gemini_base_url) as http:
        me = (await http.get("/api/v1/me", headers={"Authorization": f"Bearer {sdk.api_key}"})).json()
    assert me["balance"] == "1000"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        yield fake


@pytest.fixture
async def upstream_base_url(settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine) -> AsyncIterator[str]:
    app = create_app(
        replace_settings(settings, providers={"openai_base_url": f"{upstream.base_url}/v1", "openai_api_key": "sk-up"})
    )
    async with serve_on_loopback(app) as url:
        yield url


async def test_an_upstream_tool_call_reaches_the_sdk_and_is_billed_its_reported_usage(
    upstream_base_url: str, upstream: FakeUpstream, settings: Settings, clean_db: AsyncEngine
) -> None:
    """Through the `openai` adapter: the vendor's tool-call deltas relayed in OpenAI's shape, its usage billed."""
    async with httpx.AsyncClient(base_url=upstream_base_url) as http:
        token = await upstream_model_client(http, settings, "tooled", "up1")
    sdk = openai.AsyncOpenAI(base_url=f"{upstream_base_url}/v1", api_key=token, max_retries=0)
    upstream.use(garbage(OPENAI_TOOL_STREAM))
    stream = await sdk.chat.completions.create(
        model="tooled",
        messages=WEATHER_QUESTION,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert [(c.index, c.id, c.function and c.function.name) for c in calls] == [
        (0, "call_a", "get_weather"),
        (0, None, None),
        (0, None, None),
        (1, "call_b", "get_time"),
    ]
    assert "".join(c.function.arguments or "" for c in calls if c.function and c.index == 0) == '{"city": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (20, 9)
    (sent,) = upstream.requests
    assert sent.body["tools"] == [WEATHER_TOOL]
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []
