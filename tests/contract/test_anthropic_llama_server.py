"""The `anthropic` adapter against a real Messages API server: llama-server's /v1/messages with SmolLM2-135M."""

import httpx
import pytest

from adapters.llm.anthropic_messages import AnthropicMessagesProvider
from tests.contract import llama_cases
from tests.contract.conftest import COUNTER, LlamaServer


@pytest.fixture
def provider(http: httpx.AsyncClient, llama_server: LlamaServer) -> AnthropicMessagesProvider:
    return AnthropicMessagesProvider(http, llama_server.host, llama_server.api_key, COUNTER)


async def test_streams_text_and_reports_usage(provider: AnthropicMessagesProvider) -> None:
    await llama_cases.streams_text_and_reports_usage(provider)


async def test_stops_at_max_tokens(provider: AnthropicMessagesProvider) -> None:
    await llama_cases.stops_at_max_tokens(provider)


async def test_a_repeated_prompt_reports_its_cached_tokens(provider: AnthropicMessagesProvider) -> None:
    await llama_cases.a_repeated_prompt_reports_its_cached_tokens(provider, "otters")


async def test_closing_the_stream_stops_generation(
    provider: AnthropicMessagesProvider, http: httpx.AsyncClient, llama_server: LlamaServer
) -> None:
    await llama_cases.closing_the_stream_stops_generation(provider, http, llama_server)


async def test_a_wrong_key_is_an_upstream_error(http: httpx.AsyncClient, llama_server: LlamaServer) -> None:
    provider = AnthropicMessagesProvider(http, llama_server.host, "sk-ant-wrong", COUNTER)
    await llama_cases.a_wrong_key_is_an_upstream_error(provider)
