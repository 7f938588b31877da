"""The `openai` adapter against a real OpenAI-compatible server: llama.cpp's llama-server with SmolLM2-135M."""

import json
from dataclasses import replace

import httpx
import pytest

from adapters.llm.openai_chat import OpenAIChatProvider
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    JsonOutput,
    JsonSchema,
    TextDelta,
    Tool,
    ToolCallDelta,
    UsageReport,
)
from entrypoints import local_model
from tests.contract import llama_cases
from tests.contract.conftest import COUNTER, LlamaServer, run

TOOL_PROMPT = "<tool_call> get_weather Paris"
WEATHER = Tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
def provider(http: httpx.AsyncClient, llama_server: LlamaServer) -> OpenAIChatProvider:
    return OpenAIChatProvider(http, f"{llama_server.host}/v1", llama_server.api_key, COUNTER)


async def test_streams_text_and_reports_usage(provider: OpenAIChatProvider) -> None:
    await llama_cases.streams_text_and_reports_usage(provider)


async def test_stops_at_max_tokens(provider: OpenAIChatProvider) -> None:
    await llama_cases.stops_at_max_tokens(provider)


async def test_a_repeated_prompt_reports_its_cached_tokens(provider: OpenAIChatProvider) -> None:
    await llama_cases.a_repeated_prompt_reports_its_cached_tokens(provider, "owls")


async def test_closing_the_stream_stops_generation(
    provider: OpenAIChatProvider, http: httpx.AsyncClient, llama_server: LlamaServer
) -> None:
    await llama_cases.closing_the_stream_stops_generation(provider, http, llama_server)


async def test_a_wrong_key_is_an_upstream_error(http: httpx.AsyncClient, llama_server: LlamaServer) -> None:
    provider = OpenAIChatProvider(http, f"{llama_server.host}/v1", "sk-wrong", COUNTER)
    await llama_cases.a_wrong_key_is_an_upstream_error(provider)


async def test_json_output_is_requested_as_a_json_object(provider: OpenAIChatProvider) -> None:
    """llama-server turns `response_format: json_object` into a grammar: the text is JSON from its first token."""
    request = llama_cases.request(8, [ChatMessage("user", "Rate this text from 0 to 10 as JSON with a score.")])
    outcome = await run(provider, replace(request, options=replace(request.options, json_output=JsonOutput())))
    assert outcome.error is None
    assert outcome.text.lstrip().startswith("{")


async def test_tool_call_deltas_are_relayed(provider: OpenAIChatProvider) -> None:
    """With the sidecar's chat template llama-server parses SmolLM2's `<tool_call>` into OpenAI tool-call deltas,
    the arguments held to the tool's schema by its grammar; the tiny model opens a call when the prompt does."""
    request = llama_cases.request(100, [ChatMessage("user", TOOL_PROMPT)])
    options = CompletionOptions(temperature=0, tools=(WEATHER,), tool_choice="required")
    deltas: list[ToolCallDelta] = []
    usages: list[UsageReport] = []
    async for event in provider.stream(replace(request, options=options)):
        assert not isinstance(event, TextDelta)
        (deltas if isinstance(event, ToolCallDelta) else usages).append(event)
    calls = {delta.index for delta in deltas}
    assert calls
    for index in calls:
        head, *rest = [delta for delta in deltas if delta.index == index]
        assert head.id
        assert head.name == "get_weather"
        assert all(delta.id is None and delta.name is None for delta in rest)
        arguments = json.loads("".join(delta.arguments for delta in (head, *rest)))
        assert set(arguments) == {"city"}
        assert isinstance(arguments["city"], str)
    [usage] = usages
    assert 0 < usage.output_tokens <= 100


async def test_provider_local_passes_tools_on_and_refuses_parallel_tool_calls(
    provider: OpenAIChatProvider,
) -> None:
    local = OpenAIChatProvider(
        provider._client, "http://127.0.0.1:9/v1", None, COUNTER, local_model.UNSUPPORTED_PARAMETERS
    )
    request = llama_cases.request(1, [ChatMessage("user", TOOL_PROMPT)])
    tools = CompletionOptions(tools=(WEATHER,), tool_choice="auto")
    assert local.unsupported(replace(request, options=tools)) is None
    parallel = replace(tools, parallel_tool_calls=False)
    assert local.unsupported(replace(request, options=parallel)) == "parallel_tool_calls"


async def test_a_json_schema_is_followed_from_the_first_token(provider: OpenAIChatProvider) -> None:
    """`response_format: json_schema` becomes a grammar too."""
    request = llama_cases.request(6, [ChatMessage("user", "The weather in Paris, as JSON.")])
    schema = JsonSchema("weather", WEATHER.parameters)
    outcome = await run(
        provider, replace(request, options=CompletionOptions(temperature=0, json_output=JsonOutput(schema)))
    )
    assert outcome.error is None
    assert outcome.text.lstrip().startswith("{")
