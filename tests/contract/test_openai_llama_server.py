"""The `openai` adapter against a real OpenAI-compatible server: llama.cpp's llama-server with SmolLM2-135M."""

from dataclasses import replace

import httpx
import pytest

from adapters.llm.openai_chat import OpenAIChatProvider
from application.ports.llm import ChatMessage
from tests.contract import llama_cases
from tests.contract.conftest import COUNTER, LlamaServer, run


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
    outcome = await run(provider, replace(request, json_output=True))
    assert outcome.error is None
    assert outcome.text.lstrip().startswith("{")
