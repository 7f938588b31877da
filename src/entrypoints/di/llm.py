"""LLM provider adapters: one pooled upstream HTTP client, the token counter, and the registry of the providers the
settings enable (each adapter decides from its key and base URL whether it serves, and where): the built-ins and
the `PROVIDER_INSTANCES`."""

from collections.abc import AsyncIterator

import httpx
from dishka import Provider, Scope, provide

from adapters.llm.anthropic_messages import AnthropicMessagesProvider
from adapters.llm.gemini import GeminiProvider
from adapters.llm.http_transport import upstream_client
from adapters.llm.openai_chat import OpenAIChatProvider
from adapters.llm.registry import StaticProviderRegistry
from adapters.llm.simulator import SimulatorProvider
from adapters.llm.sse_lines import SseProvider
from adapters.llm.token_counter import ApproximateTokenCounter
from application.ports.llm import ProviderRegistry, TokenCounter
from entrypoints.local_model import UNSUPPORTED_PARAMETERS
from entrypoints.settings import LocalModelSettings, ProviderSettings

UPSTREAM_MAX_CONNECTIONS = 1000
_PROTOCOLS: dict[str, type[SseProvider]] = {
    "openai": OpenAIChatProvider,
    "anthropic": AnthropicMessagesProvider,
    "gemini": GeminiProvider,
}


class ModelProvidersProvider(Provider):
    scope = Scope.APP

    token_counter = provide(ApproximateTokenCounter, provides=TokenCounter)

    @provide
    async def http_client(self, providers: ProviderSettings) -> AsyncIterator[httpx.AsyncClient]:
        timeout = httpx.Timeout(providers.read_timeout_seconds, connect=providers.connect_timeout_seconds)
        async with upstream_client(timeout, UPSTREAM_MAX_CONNECTIONS, keepalive_seconds=30) as client:
            yield client

    @provide
    def registry(
        self,
        providers: ProviderSettings,
        local_model: LocalModelSettings,
        client: httpx.AsyncClient,
        counter: TokenCounter,
    ) -> ProviderRegistry:
        instances = {
            name: _PROTOCOLS[instance.protocol].configured(
                client, counter, api_key=instance.api_key, base_url=instance.base_url
            )
            for name, instance in providers.instance_map().items()
        }
        return StaticProviderRegistry(
            {
                **instances,
                "simulator": SimulatorProvider(counter, providers.simulator_token_delay_ms),
                "openai": OpenAIChatProvider.configured(
                    client, counter, api_key=providers.openai_api_key, base_url=providers.openai_base_url
                ),
                "anthropic": AnthropicMessagesProvider.configured(
                    client, counter, api_key=providers.anthropic_api_key, base_url=providers.anthropic_base_url
                ),
                "gemini": GeminiProvider.configured(
                    client, counter, api_key=providers.gemini_api_key, base_url=providers.gemini_base_url
                ),
                "local": OpenAIChatProvider.local(
                    client,
                    counter,
                    base_url=local_model.base_url,
                    api_key=local_model.api_key,
                    refuses=UNSUPPORTED_PARAMETERS,
                ),
            }
        )
