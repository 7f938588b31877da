"""The official `openai` SDK through creditgate to the `local` provider on llama-server (SmolLM2 with the sidecar's
tools chat template): a tool-calling round trip, streamed and not, each request billed the usage llama-server
reported at the catalog price."""

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from openai.types import CompletionUsage
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.credits import Credits
from domain.pricing import Pricing, Usage
from entrypoints import local_model
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.contract.conftest import LlamaServer
from tests.support.api import admin_token, bearer, client_token, fund, user_id_of
from tests.support.audit import ledger_violations
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

MODEL = "smollm2-tools"
PRICING = Pricing(100, Credits.whole(20), Credits.whole(40))
FUNDS = "1000"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# SmolLM2-135M follows a call the prompt opens; under `required` the grammar then holds it to the schema
QUESTION: Any = [{"role": "user", "content": "<tool_call> get_weather Paris"}]
CALL_TOKENS = 100
ANSWER_TOKENS = 8


@pytest.fixture
async def base_url(settings: Settings, llama_server: LlamaServer, clean_db: AsyncEngine) -> AsyncIterator[str]:
    local = {"base_url": f"{llama_server.host}/v1", "api_key": llama_server.api_key}
    async with serve_on_loopback(create_app(replace_settings(settings, local_model=local))) as url:
        yield url


async def _sdk(base_url: str, settings: Settings, username: str) -> openai.AsyncOpenAI:
    """A client holding FUNDS credits, and the catalog model MODEL on provider `local`."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        admin = await admin_token(http, settings, username=f"{username}-admin")
        model = {
            "id": MODEL,
            "provider": local_model.PROVIDER,
            "upstream_model": local_model.MODEL_ID,
            "pricing": {"unit_tokens": 100, "input_credits": "20", "output_credits": "40"},
            "max_output_tokens": 512,
        }
        assert (await http.post("/api/v1/admin/models", json=model, headers=bearer(admin))).status_code == 201
        token = await client_token(http, username)
        await fund(http, admin, await user_id_of(http, token), FUNDS)
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=token, max_retries=0)


def _answers(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The assistant's tool calls and a `tool` message answering each."""
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": '{"forecast": "sunny"}'}
        for call in message["tool_calls"]
    ]
    return [*QUESTION, message, *results]


def _valid_arguments(arguments: str) -> None:
    parsed = json.loads(arguments)
    assert set(parsed) == {"city"}
    assert isinstance(parsed["city"], str)


async def _billed_exactly(sdk: openai.AsyncOpenAI, engine: AsyncEngine, usages: list[CompletionUsage]) -> None:
    """Each generation stored with the usage llama-server reported (as the SDK saw it) and charged its price; the
    balance is what the ledger says."""
    async with httpx.AsyncClient(base_url=str(sdk.base_url).removesuffix("/v1/")) as http:
        history = (await http.get("/api/v1/generations", headers=bearer(sdk.api_key))).json()["items"]
        balance = Decimal((await http.get("/api/v1/me", headers=bearer(sdk.api_key))).json()["balance"])
    costs = [PRICING.cost(Usage(u.prompt_tokens, u.completion_tokens)) for u in usages]
    expected = sorted((u.prompt_tokens, u.completion_tokens, str(cost)) for u, cost in zip(usages, costs, strict=True))
    stored = sorted((g["usage"]["input_tokens"], g["usage"]["output_tokens"], g["cost"]) for g in history)
    assert stored == expected
    assert all(str(cost) == (u.model_extra or {})["cost"] for u, cost in zip(usages, costs, strict=True))
    assert balance == Decimal(FUNDS) - sum((Decimal(str(cost)) for cost in costs), Decimal(0))
    assert await ledger_violations(engine) == []
    assert await generation_violations(engine) == []


async def test_a_tool_calling_round_trip(base_url: str, settings: Settings, clean_db: AsyncEngine) -> None:
    sdk = await _sdk(base_url, settings, "llama-tools1")
    first = await sdk.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
        max_tokens=CALL_TOKENS,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls
    for call in calls:
        assert call.type == "function"
        assert call.id
        assert call.function.name == "get_weather"
        _valid_arguments(call.function.arguments)
    answer = await sdk.chat.completions.create(
        model=MODEL,
        messages=_answers(choice.message.model_dump(exclude_none=True)),
        tools=[WEATHER_TOOL],
        temperature=0,
        max_tokens=ANSWER_TOKENS,
    )
    assert answer.choices[0].message.content
    assert answer.choices[0].message.tool_calls is None
    assert first.usage is not None
    assert answer.usage is not None
    assert 0 < first.usage.completion_tokens <= CALL_TOKENS
    assert 0 < answer.usage.completion_tokens <= ANSWER_TOKENS
    assert answer.usage.prompt_tokens > first.usage.prompt_tokens  # the call and its result are in the prompt
    await _billed_exactly(sdk, clean_db, [first.usage, answer.usage])


async def test_a_streamed_tool_calling_round_trip(base_url: str, settings: Settings, clean_db: AsyncEngine) -> None:
    sdk = await _sdk(base_url, settings, "llama-tools2")
    stream = await sdk.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
        max_tokens=CALL_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    deltas = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    indexes = sorted({delta.index for delta in deltas})
    assert indexes
    tool_calls = []
    for index in indexes:
        head, *rest = [delta for delta in deltas if delta.index == index]
        assert head.id
        assert head.function is not None
        assert head.function.name == "get_weather"
        assert all(d.id is None and d.function is not None and d.function.name is None for d in rest)
        arguments = "".join(d.function.arguments or "" for d in (head, *rest) if d.function)
        _valid_arguments(arguments)
        function = {"name": "get_weather", "arguments": arguments}
        tool_calls.append({"id": head.id, "type": "function", "function": function})
    first = chunks[-1].usage
    assert first is not None
    stream = await sdk.chat.completions.create(
        model=MODEL,
        messages=_answers({"role": "assistant", "tool_calls": tool_calls}),
        tools=[WEATHER_TOOL],
        temperature=0,
        max_tokens=ANSWER_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    answer = chunks[-1].usage
    assert answer is not None
    assert 0 < answer.completion_tokens <= ANSWER_TOKENS
    await _billed_exactly(sdk, clean_db, [first, answer])
