"""The official `anthropic` SDK against `/v1/messages`: same auth, same billing, Anthropic shapes, events and errors,
for models of any provider (the simulator, and the fake upstream on the `openai` and `anthropic` protocols)."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import anthropic
import httpx
import pytest
from anthropic.types import Message, RawMessageDeltaEvent, RawMessageStartEvent, TextBlock, ToolUseBlock
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.credits import Credits
from domain.pricing import Pricing, Usage
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token
from tests.support.audit import ledger_violations
from tests.support.fake_upstream import FakeUpstream, fail_after, serve_fake_upstream, steady, with_usage
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

HELLO: list[Any] = [{"role": "user", "content": "Say hello"}]
DR14 = Pricing(100, Credits.whole(20), Credits.whole(20))
UPSTREAM_PRICE = Pricing(1, Credits(1000), Credits(2000))


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        yield fake


@pytest.fixture
async def http(settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    gateway = create_app(
        replace_settings(
            settings,
            providers={
                "openai_base_url": f"{upstream.base_url}/v1",
                "openai_api_key": "sk-upstream",
                "anthropic_base_url": upstream.base_url,
                "anthropic_api_key": "sk-ant-upstream",
            },
        )
    )
    async with serve_on_loopback(gateway) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


async def _funded(http: httpx.AsyncClient, settings: Settings, username: str, amount: str | None = "50") -> str:
    token = await client_token(http, username)
    admin = await admin_token(http, settings, username=f"{username}-admin")
    user_id = (await http.get("/api/v1/me", headers=bearer(token))).json()["id"]
    for provider in ("openai", "anthropic"):
        model = {
            "id": f"{username}-{provider}",
            "provider": provider,
            "upstream_model": f"fake-{provider}",
            "pricing": {"unit_tokens": 1, "input_credits": "0.001", "output_credits": "0.002"},
            "max_output_tokens": 1000,
        }
        assert (await http.post("/api/v1/admin/models", json=model, headers=bearer(admin))).status_code == 201
    if amount is not None:
        funding = {"amount": amount, "reason": "t"}
        funded = await http.post(f"/api/v1/admin/users/{user_id}/balance", json=funding, headers=bearer(admin))
        assert funded.status_code == 200
    return token


def _text(message: Message) -> str:
    assert [block.type for block in message.content] == ["text"]
    block = message.content[0]
    assert isinstance(block, TextBlock)
    return block.text


def _sdk(http: httpx.AsyncClient, token: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=str(http.base_url), api_key=token, max_retries=0)


async def _generation(http: httpx.AsyncClient, token: str, message_id: str) -> dict[str, Any]:
    generation_id = UUID(message_id.removeprefix("msg_"))
    generation: dict[str, Any] = (await http.get(f"/api/v1/generations/{generation_id}", headers=bearer(token))).json()
    return generation


async def _books_balance(engine: AsyncEngine) -> None:
    assert await ledger_violations(engine) == []
    assert await generation_violations(engine) == []


async def test_a_message_is_billed_like_a_generation(
    http: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "msg1")
    message = await _sdk(http, token).messages.create(
        model="dr14", max_tokens=7, system=[{"type": "text", "text": "Be brief."}], messages=HELLO
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "dr14"
    assert _text(message)
    assert message.stop_reason == "max_tokens"
    assert message.stop_sequence is None
    assert message.usage.output_tokens == 7
    generation = await _generation(http, token, message.id)
    assert generation["status"] == "completed"
    usage = generation["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (message.usage.input_tokens, 7)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (0, 0)
    assert generation["output"]["content"] == _text(message)
    assert generation["cost"] == str(DR14.cost(Usage(message.usage.input_tokens, 7)))
    await _books_balance(clean_db)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_upstream_that_ends_its_turn_is_end_turn_with_its_usage(
    http: httpx.AsyncClient, settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine, provider: str
) -> None:
    token = await _funded(http, settings, f"msg2{provider}")
    upstream.use(with_usage(4, 40, 4))
    message = await _sdk(http, token).messages.create(model=f"msg2{provider}-{provider}", max_tokens=50, messages=HELLO)
    assert message.stop_reason == "end_turn"
    assert _text(message) == "tok0 tok1 tok2 tok3 "
    assert (message.usage.input_tokens, message.usage.output_tokens) == (40, 4)
    assert (await _generation(http, token, message.id))["cost"] == str(UPSTREAM_PRICE.cost(Usage(40, 4)))
    await _books_balance(clean_db)


async def test_the_stream_helper_accumulates_the_message_the_ledger_bills(
    http: httpx.AsyncClient, settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "msg3")
    upstream.use(with_usage(5, 30, 5))
    async with _sdk(http, token).messages.stream(model="msg3-openai", max_tokens=50, messages=HELLO) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "tok0 tok1 tok2 tok3 tok4 "
    assert _text(final) == "".join(texts)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 5)
    generation = await _generation(http, token, final.id)
    assert (generation["status"], generation["cost"]) == ("completed", str(UPSTREAM_PRICE.cost(Usage(30, 5))))
    await _books_balance(clean_db)


async def test_the_raw_stream_has_anthropics_event_sequence(http: httpx.AsyncClient, settings: Settings) -> None:
    token = await _funded(http, settings, "msg4")
    stream = await _sdk(http, token).messages.create(model="gemini-flash", max_tokens=3, messages=HELLO, stream=True)
    events = [event async for event in stream]
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert isinstance(start, RawMessageStartEvent)
    assert isinstance(delta, RawMessageDeltaEvent)
    assert start.message.usage.output_tokens == 0
    assert start.message.model == "gemini-flash"
    assert delta.delta.stop_reason == "max_tokens"
    assert delta.usage.output_tokens == 3
    assert delta.usage.input_tokens == start.message.usage.input_tokens


async def test_a_client_that_leaves_mid_stream_is_billed_what_was_read(
    http: httpx.AsyncClient, settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "msg5")
    upstream.use(steady(200, delay_s=0.02))
    deltas = 0
    stream = await _sdk(http, token).messages.create(model="msg5-openai", max_tokens=500, messages=HELLO, stream=True)
    async with stream:
        async for event in stream:
            if event.type == "message_start":
                message_id = event.message.id
            deltas += event.type == "content_block_delta"
            if deltas == 5:
                break
    for _ in range(100):  # the gateway notices the disconnect, closes the upstream and settles
        generation = await _generation(http, token, message_id)
        if generation["status"] != "running" and upstream.requests[0].disconnected_at is not None:
            break
        await asyncio.sleep(0.02)
    assert upstream.requests[0].disconnected_at is not None
    assert generation["status"] == "cancelled"
    assert 5 <= generation["usage"]["output_tokens"] <= upstream.requests[0].chunks_sent
    assert generation["cost"] == str(UPSTREAM_PRICE.cost(Usage(**generation["usage"])))
    await _books_balance(clean_db)


async def test_an_upstream_failure_mid_stream_is_an_anthropic_error_event(
    http: httpx.AsyncClient, settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "msg6")
    upstream.use(fail_after(3))
    stream = await _sdk(http, token).messages.create(model="msg6-openai", max_tokens=50, messages=HELLO, stream=True)
    seen: Counter[str] = Counter()

    async def read() -> None:
        async for event in stream:
            seen[event.type] += 1

    with pytest.raises(anthropic.APIStatusError) as raised:
        await read()
    assert seen == {"message_start": 1, "content_block_start": 1, "content_block_delta": 3}
    assert raised.value.body == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": "openai broke off the stream.",
            "details": {"error_code": "upstream_error"},
        },
    }
    await _books_balance(clean_db)


@pytest.mark.parametrize("stream", [False, True])
async def test_no_balance_is_a_402_billing_error_before_any_stream(
    http: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine, stream: bool
) -> None:
    token = await _funded(http, settings, f"msg7{stream}", amount=None)
    with pytest.raises(anthropic.PaymentRequiredError) as raised:
        await _sdk(http, token).messages.create(model="dr14", max_tokens=5, messages=HELLO, stream=stream)
    assert raised.value.status_code == 402
    assert raised.value.body == {
        "type": "error",
        "error": {
            "type": "billing_error",
            "message": "The balance does not cover this request.",
            "details": {"error_code": "insufficient_balance"},
        },
    }
    await _books_balance(clean_db)


async def test_a_bad_token_and_an_unknown_model_are_anthropic_errors(
    http: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine
) -> None:
    with pytest.raises(anthropic.AuthenticationError) as unauthenticated:
        await _sdk(http, "not-a-token").messages.create(model="dr14", max_tokens=5, messages=HELLO)
    assert unauthenticated.value.body == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "The token is invalid, expired or revoked.",
            "details": {"error_code": "invalid_token"},
        },
    }
    token = await _funded(http, settings, "msg8")
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await _sdk(http, token).messages.create(model="nope", max_tokens=5, messages=HELLO)
    assert unknown.value.body == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "No enabled model has this id.",
            "details": {"error_code": "model_not_found"},
        },
    }
    await _books_balance(clean_db)


async def test_an_invalid_request_names_its_field(http: httpx.AsyncClient, settings: Settings) -> None:
    token = await _funded(http, settings, "msg9")
    response = await http.post("/v1/messages", json={"model": "dr14", "messages": HELLO}, headers=bearer(token))
    assert response.status_code == 422
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: Object missing required field `max_tokens`",
            "details": {"error_code": "validation_error"},
        },
    }
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a PDF"}}
    refused = await http.post(
        "/v1/messages",
        json={"model": "dr14", "max_tokens": 5, "messages": [{"role": "user", "content": [document]}]},
        headers=bearer(token),
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("messages[0].content")
    untyped = {"model": "dr14", "max_tokens": 5, "system": [{"text": "Be brief."}], "messages": HELLO}
    response = await http.post("/v1/messages", json=untyped, headers=bearer(token))
    assert response.status_code == 422
    assert response.json()["error"]["message"].endswith("Object missing required field `type`")


@pytest.mark.parametrize(
    ("body", "status", "kind", "code"),
    [
        (b"{not json", 400, "invalid_request_error", "malformed_json"),
        (b'{"model": "' + b"x" * (1024 * 1024) + b'"}', 413, "request_too_large", "payload_too_large"),
    ],
)
async def test_a_body_that_cannot_be_read_is_an_anthropic_error(
    http: httpx.AsyncClient, settings: Settings, body: bytes, status: int, kind: str, code: str
) -> None:
    token = await _funded(http, settings, f"msg12{status}")
    headers = bearer(token) | {"content-type": "application/json"}
    response = await http.post("/v1/messages", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
    assert response.json()["error"]["details"] == {"error_code": code}


async def test_a_tool_result_from_the_assistant_is_refused(http: httpx.AsyncClient, settings: Settings) -> None:
    token = await _funded(http, settings, "msg13")
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C"}
    body = {"model": "dr14", "max_tokens": 5, "messages": [*HELLO, {"role": "assistant", "content": [result]}]}
    response = await http.post("/v1/messages", json=body, headers=bearer(token))
    assert response.status_code == 422
    assert response.json()["error"]["message"] == ("messages[1].content[0]: a `tool_result` belongs in a user message")


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
async def test_the_token_goes_in_x_api_key_or_as_a_bearer(
    http: httpx.AsyncClient, settings: Settings, header: str
) -> None:
    token = await _funded(http, settings, f"msg10{header[0]}")
    credential = {"x-api-key": token} if header == "x-api-key" else bearer(token)
    body = {"model": "dr14", "max_tokens": 2, "messages": HELLO}
    response = await http.post("/v1/messages", json=body, headers=credential | {"anthropic-version": "2023-06-01"})
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["output_tokens"] == 2


async def test_x_api_key_is_read_on_the_anthropic_surface_only(http: httpx.AsyncClient, settings: Settings) -> None:
    token = await _funded(http, settings, "msg11")
    assert (await http.get("/api/v1/me", headers={"x-api-key": token})).status_code == 401
    body = {"model": "dr14", "messages": HELLO}
    assert (await http.post("/v1/chat/completions", json=body, headers={"x-api-key": token})).status_code == 401


WEATHER: Any = {
    "name": "get_weather",
    "description": "The current weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_QUESTION: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]


def _tool_use(message: Message) -> ToolUseBlock:
    assert [block.type for block in message.content] == ["tool_use"]
    block = message.content[0]
    assert isinstance(block, ToolUseBlock)
    return block


async def test_a_tool_round_trip_on_the_simulator_is_billed_each_turn(
    http: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "tool1")
    sdk = _sdk(http, token)
    asked = await sdk.messages.create(model="dr14", max_tokens=40, tools=[WEATHER], messages=WEATHER_QUESTION)
    call = _tool_use(asked)
    assert asked.stop_reason == "tool_use"
    assert call.name == "get_weather"
    assert isinstance(call.input, dict)
    assert isinstance(call.input["city"], str)
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "18 °C, light rain"}
    answered = await sdk.messages.create(
        model="dr14",
        max_tokens=6,
        tools=[WEATHER],
        messages=[
            *WEATHER_QUESTION,
            {"role": "assistant", "content": [block.model_dump() for block in asked.content]},  # type: ignore[misc]
            {"role": "user", "content": [result]},
        ],
    )
    assert _text(answered)
    assert answered.stop_reason == "max_tokens"
    for message in (asked, answered):
        generation = await _generation(http, token, message.id)
        usage = (message.usage.input_tokens, message.usage.output_tokens)
        assert (generation["usage"]["input_tokens"], generation["usage"]["output_tokens"]) == usage
        assert generation["cost"] == str(DR14.cost(Usage(*usage)))
    await _books_balance(clean_db)


async def test_a_streamed_tool_call_is_the_same_call_as_input_json_deltas(
    http: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "tool2")
    sdk = _sdk(http, token)
    whole = await sdk.messages.create(model="dr14", max_tokens=40, tools=[WEATHER], messages=WEATHER_QUESTION)
    async with sdk.messages.stream(model="dr14", max_tokens=40, tools=[WEATHER], messages=WEATHER_QUESTION) as stream:
        kinds = [event.type async for event in stream]
        streamed = await stream.get_final_message()
    assert "input_json" in kinds
    assert streamed.stop_reason == "tool_use"
    assert (_tool_use(streamed).name, _tool_use(streamed).input) == (_tool_use(whole).name, _tool_use(whole).input)
    assert streamed.usage.output_tokens == whole.usage.output_tokens
    await _books_balance(clean_db)


async def test_tool_results_and_calls_reach_the_provider_as_its_tool_messages(
    http: httpx.AsyncClient, settings: Settings, upstream: FakeUpstream
) -> None:
    token = await _funded(http, settings, "tool3")
    upstream.use(with_usage(2, 30, 2))
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "no data"}]}
    await _sdk(http, token).messages.create(
        model="tool3-openai",
        max_tokens=20,
        tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=[
            *WEATHER_QUESTION,
            {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, call]},
            {"role": "user", "content": [result | {"is_error": True}, {"type": "text", "text": "Go on."}]},
        ],
    )
    sent = upstream.requests[0].body
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "Error: no data", "tool_call_id": "toolu_1"},
        {"role": "user", "content": "Go on."},
    ]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["parallel_tool_calls"] is False


async def test_an_image_block_reaches_the_provider_as_an_image_part(
    http: httpx.AsyncClient, settings: Settings, upstream: FakeUpstream
) -> None:
    token = await _funded(http, settings, "img1")
    upstream.use(with_usage(2, 30, 2))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    content = [{"type": "text", "text": "What is this?"}, image]
    await _sdk(http, token).messages.create(
        model="img1-openai", max_tokens=20, messages=[{"role": "user", "content": content}]
    )
    parts = upstream.requests[0].body["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


async def test_a_parameter_no_provider_honours_is_refused_before_any_charge(
    http: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine
) -> None:
    token = await _funded(http, settings, "tool4")
    with pytest.raises(anthropic.BadRequestError) as raised:
        await _sdk(http, token).messages.create(model="dr14", max_tokens=5, messages=HELLO, extra_body={"top_k": 5})
    assert raised.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "`top_k` is not supported by model 'dr14'.",
            "details": {"error_code": "unsupported_parameter"},
        },
    }
    assert (await http.get("/api/v1/me/balance", headers=bearer(token))).json()["balance"] == "50"


async def test_count_tokens_is_what_the_message_is_billed_and_is_free(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    token = await _funded(http, settings, "count1")
    sdk = _sdk(http, token)
    prompt: dict[str, Any] = {"model": "dr14", "system": "Be brief.", "tools": [WEATHER], "messages": WEATHER_QUESTION}
    counted = await sdk.messages.count_tokens(**prompt)
    assert (await http.get("/api/v1/me/balance", headers=bearer(token))).json()["balance"] == "50"
    message = await sdk.messages.create(max_tokens=5, **prompt)
    assert counted.input_tokens == message.usage.input_tokens
    without_tools = await sdk.messages.count_tokens(model="dr14", system="Be brief.", messages=WEATHER_QUESTION)
    assert without_tools.input_tokens < counted.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        await sdk.messages.count_tokens(model="nope", messages=HELLO)


async def test_tool_choice_names_the_tool_to_call(http: httpx.AsyncClient, settings: Settings) -> None:
    token = await _funded(http, settings, "tool5")
    clock = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    sdk = _sdk(http, token)
    chosen = await sdk.messages.create(
        model="dr14",
        max_tokens=20,
        tools=[WEATHER, clock],
        tool_choice={"type": "tool", "name": "get_time"},
        messages=WEATHER_QUESTION,
    )
    assert _tool_use(chosen).name == "get_time"
    with pytest.raises(anthropic.UnprocessableEntityError) as raised:
        await sdk.messages.create(
            model="dr14",
            max_tokens=20,
            tools=[WEATHER],
            tool_choice={"type": "tool", "name": "get_time"},
            messages=WEATHER_QUESTION,
        )
    assert raised.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "tool_choice.name: no tool is named 'get_time'",
            "details": {"error_code": "validation_error"},
        },
    }
