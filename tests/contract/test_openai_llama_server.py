"""The `openai` adapter against a real OpenAI-compatible server: llama.cpp's llama-server with SmolLM2-135M."""

from dataclasses import replace

import httpx
import pytest

from adapters.llm.openai_chat import OpenAIChatProvider
from application.ports.llm import ChatMessage, CompletionOptions, JsonOutput, JsonSchema, Tool, UsageReport
from entrypoints import local_model
from tests.contract import llama_cases
from tests.contract.conftest import COUNTER, LlamaServer, run

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


async def test_smollm2_ignores_tools_which_is_why_provider_local_refuses_them(
    provider: OpenAIChatProvider, http: httpx.AsyncClient
) -> None:
    """llama-server reads no tools into a chat template without any (`chat_template_caps.supports_tools` is false):
    the same prompt tokens with or without them, even `required`, and plain text back. Passing them on would drop
    them silently, so provider `local` refuses them (400 `unsupported_parameter`)."""
    request = llama_cases.request(1, [ChatMessage("user", "What is the weather in Paris?")])
    tools = CompletionOptions(temperature=0, tools=(WEATHER,), tool_choice="required")
    plain, with_tools = await run(provider, request), await run(provider, replace(request, options=tools))
    assert (plain.error, with_tools.error) == (None, None)
    assert all(isinstance(usage, UsageReport) for usage in with_tools.usages)  # no tool-call delta
    assert [u.input_tokens for u in with_tools.usages] == [u.input_tokens for u in plain.usages]
    local = OpenAIChatProvider(
        provider._client, "http://127.0.0.1:9/v1", None, COUNTER, local_model.UNSUPPORTED_PARAMETERS
    )
    assert local.unsupported(replace(request, options=tools)) == "tools"


async def test_a_json_schema_is_followed_from_the_first_token(provider: OpenAIChatProvider) -> None:
    """`response_format: json_schema` becomes a grammar too."""
    request = llama_cases.request(6, [ChatMessage("user", "The weather in Paris, as JSON.")])
    schema = JsonSchema("weather", WEATHER.parameters)
    outcome = await run(
        provider, replace(request, options=CompletionOptions(temperature=0, json_output=JsonOutput(schema)))
    )
    assert outcome.error is None
    assert outcome.text.lstrip().startswith("{")
