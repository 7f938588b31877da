"""Tools, images and structured output through the provider adapters, against the real fake upstream over loopback:
the exact upstream request body each vendor receives, and the tool-call deltas relayed from each vendor's stream."""

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from adapters.llm.simulator import SimulatorProvider
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    ImagePart,
    JsonOutput,
    JsonSchema,
    NamedTool,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    UsageReport,
)
from tests.adapters.test_providers import COUNTER, make_provider
from tests.support.fake_upstream import FakeUpstream, garbage, serve_fake_upstream, steady

PNG = "iVBORw0KGgo="
WEATHER = Tool(
    "get_weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "The weather of a city.",
)
TIME = Tool("get_time", description="The time of a city.")
CALLS = (ToolCall("call_1", "get_weather", '{"city": "Paris"}'), ToolCall("call_2", "get_time", "{}"))
CHAT = (
    ChatMessage("system", "Be brief."),
    ChatMessage("user", (TextPart("Weather here?"), ImagePart(f"data:image/png;base64,{PNG}"))),
    ChatMessage("assistant", "Let me look.", tool_calls=CALLS),
    ChatMessage("tool", '{"forecast": "sunny"}', tool_call_id="call_1"),
    ChatMessage("tool", "noon", tool_call_id="call_2"),
    ChatMessage("user", "Thanks"),
)
OPTIONS = CompletionOptions(
    temperature=0.2, top_p=0.9, stop=("END",), tools=(WEATHER, TIME), tool_choice=NamedTool("get_weather")
)
REQUEST = CompletionRequest("m-1", CHAT, 32, OPTIONS)


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def _events(
    upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, request: CompletionRequest
) -> list[StreamEvent]:
    return [event async for event in make_provider(vendor, http, upstream.base_url).stream(request)]


async def _sent(upstream: FakeUpstream, http: httpx.AsyncClient, vendor: str, request: CompletionRequest) -> object:
    upstream.use(steady(1))
    await _events(upstream, http, vendor, request)
    (recorded,) = upstream.requests
    return recorded.body


async def test_openai_gets_every_parameter_as_sent(upstream: FakeUpstream, http: httpx.AsyncClient) -> None:
    request = replace(REQUEST, options=replace(OPTIONS, seed=7, parallel_tool_calls=False, tool_choice="required"))
    assert await _sent(upstream, http, "openai", request) == {
        "model": "m-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "content": '{"forecast": "sunny"}', "tool_call_id": "call_1"},
            {"role": "tool", "content": "noon", "tool_call_id": "call_2"},
            {"role": "user", "content": "Thanks"},
        ],
        "max_tokens": 32,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "parallel_tool_calls": False,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER.parameters,
                    "description": "The weather of a city.",
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "get_time",
                    "parameters": {"type": "object", "properties": {}},
                    "description": "The time of a city.",
                },
            },
        ],
        "tool_choice": "required",
    }


async def test_openai_json_schema_is_a_response_format(upstream: FakeUpstream, http: httpx.AsyncClient) -> None:
    schema = JsonSchema("weather", {"type": "object"}, strict=True)
    request = CompletionRequest("m-1", CHAT[:2], 8, CompletionOptions(json_output=JsonOutput(schema)))
    body = await _sent(upstream, http, "openai", request)
    assert isinstance(body, dict)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": True},
    }


async def test_anthropic_gets_blocks_tools_and_its_tool_choice(upstream: FakeUpstream, http: httpx.AsyncClient) -> None:
    request = replace(REQUEST, options=replace(OPTIONS, parallel_tool_calls=False))
    assert await _sent(upstream, http, "anthropic", request) == {
        "model": "m-1",
        "max_tokens": 32,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": '{"forecast": "sunny"}'},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
                ],
            },
            {"role": "user", "content": "Thanks"},
        ],
        "stream": True,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {"name": "get_weather", "description": "The weather of a city.", "input_schema": WEATHER.parameters},
            {
                "name": "get_time",
                "description": "The time of a city.",
                "input_schema": {"type": "object", "properties": {}},
            },
        ],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    }


async def test_anthropic_fetches_an_image_by_url_and_answers_json_through_a_forced_tool(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    schema = JsonSchema("weather", WEATHER.parameters)
    message = ChatMessage("user", (ImagePart("https://example.com/cat.png"),))
    body = await _sent(
        upstream,
        http,
        "anthropic",
        CompletionRequest("m-1", [message], 8, CompletionOptions(json_output=JsonOutput(schema))),
    )
    assert isinstance(body, dict)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}],
        }
    ]
    assert body["tools"] == [
        {"name": "json_answer", "description": "Answer with this JSON.", "input_schema": WEATHER.parameters}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_answer"}


async def test_gemini_gets_function_declarations_parts_and_its_config(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    schema = JsonSchema("weather", {"type": "object"})
    request = replace(REQUEST, options=replace(OPTIONS, seed=3, tool_choice="required"))
    assert await _sent(upstream, http, "gemini", request) == {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "Weather here?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"forecast": "sunny"}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                ],
            },
            {"role": "user", "parts": [{"text": "Thanks"}]},
        ],
        "generationConfig": {
            "maxOutputTokens": 32,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
            "seed": 3,
        },
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather of a city.",
                        "parametersJsonSchema": WEATHER.parameters,
                    },
                    {
                        "name": "get_time",
                        "description": "The time of a city.",
                        "parametersJsonSchema": {"type": "object", "properties": {}},
                    },
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    named = replace(REQUEST, options=CompletionOptions(tools=(WEATHER,), tool_choice=NamedTool("get_weather")))
    body = await _sent(upstream, http, "gemini", named)
    assert isinstance(body, dict)
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    json_schema = CompletionRequest("m-1", CHAT[:2], 8, CompletionOptions(json_output=JsonOutput(schema)))
    body = await _sent(upstream, http, "gemini", json_schema)
    assert isinstance(body, dict)
    assert body["generationConfig"] == {
        "maxOutputTokens": 8,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    }


@pytest.mark.parametrize(
    ("vendor", "options", "messages", "refused"),
    [
        ("openai", replace(OPTIONS, seed=1, parallel_tool_calls=False), CHAT, None),
        ("anthropic", replace(OPTIONS, seed=1), CHAT, "seed"),
        ("anthropic", replace(OPTIONS, json_output=JsonOutput()), CHAT, "response_format"),
        (
            "anthropic",
            OPTIONS,
            [ChatMessage("user", (ImagePart(f"data:image/png;base64,{PNG}", "high"),))],
            "image_detail",
        ),
        ("gemini", replace(OPTIONS, parallel_tool_calls=False), CHAT, "parallel_tool_calls"),
        ("gemini", OPTIONS, [ChatMessage("user", (ImagePart("https://example.com/cat.png"),))], "image_urls"),
        ("gemini", replace(OPTIONS, seed=1, parallel_tool_calls=True, json_output=JsonOutput()), CHAT, None),
    ],
)
def test_what_a_vendor_cannot_honour_is_named(
    http: httpx.AsyncClient, vendor: str, options: CompletionOptions, messages: list[ChatMessage], refused: str | None
) -> None:
    request = CompletionRequest("m-1", messages, 8, options)
    assert make_provider(vendor, http, "http://127.0.0.1:9").unsupported(request) == refused


def _sse(*payloads: object, done: bool = False) -> list[str]:
    lines = [line for payload in payloads for line in (f"data: {json.dumps(payload)}", "")]
    return [*lines, "data: [DONE]", ""] if done else lines


OPENAI_TOOL_STREAM = _sse(
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                },
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        }
                    ]
                },
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9}},
    done=True,
)
ANTHROPIC_TOOL_STREAM = _sse(
    {"type": "message_start", "message": {"usage": {"input_tokens": 20, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Looking."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
    },
    {"type": "content_block_stop", "index": 2},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
)
GEMINI_TOOL_STREAM = _sse(
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Looking."}]}}]},
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "get_time", "args": {}, "id": "fc_b"}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 9},
    },
)


async def test_openai_tool_call_deltas_are_relayed(upstream: FakeUpstream, http: httpx.AsyncClient) -> None:
    upstream.use(garbage(OPENAI_TOOL_STREAM))
    assert await _events(upstream, http, "openai", REQUEST) == [
        ToolCallDelta(0, "", id="call_a", name="get_weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallDelta(1, "{}", id="call_b", name="get_time"),
        UsageReport(20, 9),
    ]


async def test_anthropic_tool_use_blocks_are_relayed_as_numbered_calls(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    upstream.use(garbage(ANTHROPIC_TOOL_STREAM))
    assert await _events(upstream, http, "anthropic", REQUEST) == [
        TextDelta("Looking."),
        ToolCallDelta(0, "", id="toolu_a", name="get_weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallDelta(1, "", id="toolu_b", name="get_time"),
        ToolCallDelta(1, "{}"),  # a call without arguments still has its JSON object
        UsageReport(20, 9),
    ]


async def test_anthropic_forced_json_tool_is_relayed_as_text(upstream: FakeUpstream, http: httpx.AsyncClient) -> None:
    upstream.use(
        garbage(
            _sse(
                {"type": "message_start", "message": {"usage": {"input_tokens": 20, "output_tokens": 1}}},
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "toolu_j", "name": "json_answer", "input": {}},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
                },
                {"type": "content_block_stop", "index": 0},
                {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 6}},
                {"type": "message_stop"},
            )
        )
    )
    request = CompletionRequest("m-1", CHAT[:2], 8, CompletionOptions(json_output=JsonOutput()))
    events = await _events(upstream, http, "anthropic", request)
    assert events == [TextDelta('{"city": '), TextDelta('"Paris"}'), UsageReport(20, 6)]


async def test_gemini_function_calls_are_relayed_whole_with_an_id(
    upstream: FakeUpstream, http: httpx.AsyncClient
) -> None:
    upstream.use(garbage(GEMINI_TOOL_STREAM))
    text, first, second, usage = await _events(upstream, http, "gemini", REQUEST)
    assert text == TextDelta("Looking.")
    assert isinstance(first, ToolCallDelta)
    assert (first.index, first.name, json.loads(first.arguments)) == (0, "get_weather", {"city": "Paris"})
    assert first.id is not None
    assert first.id.startswith("call_")
    assert second == ToolCallDelta(1, "{}", id="fc_b", name="get_time")
    assert usage == UsageReport(20, 9)


async def test_the_simulator_calls_the_named_tool_then_answers_the_result() -> None:
    simulator = SimulatorProvider(COUNTER, token_delay_ms=0)
    named = CompletionRequest(
        "sim", CHAT[:2], 64, CompletionOptions(tools=(TIME, WEATHER), tool_choice=NamedTool("get_weather"))
    )
    events = [event async for event in simulator.stream(named)]
    *calls, usage = events
    assert all(isinstance(call, ToolCallDelta) and call.index == 0 and call.tokens == 1 for call in calls)
    assert isinstance(calls[0], ToolCallDelta)
    assert calls[0].name == "get_weather"
    arguments = "".join(call.arguments for call in calls if isinstance(call, ToolCallDelta))
    assert set(json.loads(arguments)) == {"city"}
    assert usage == UsageReport(
        COUNTER.count_messages(named.messages)
        + COUNTER.count_text(
            json.dumps(
                [
                    {"name": t.name, "parameters": t.parameters, "description": t.description, "strict": None}
                    for t in (TIME, WEATHER)
                ],
                separators=(",", ":"),
            )
        ),
        len(calls),
    )
    unnamed = replace(named, options=CompletionOptions(tools=(TIME, WEATHER)))
    first = await anext(simulator.stream(unnamed))
    assert isinstance(first, ToolCallDelta)
    assert first.name == "get_time"
    for answered in (
        replace(named, messages=CHAT[:5]),
        replace(named, options=replace(named.options, tool_choice="none")),
    ):
        *texts, _ = [event async for event in simulator.stream(answered)]
        assert len(texts) == 64
        assert all(isinstance(text, TextDelta) for text in texts)
