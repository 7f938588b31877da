from collections.abc import Mapping

from application.ports.llm import LLMProvider, ProviderRegistry
from domain.errors import ProviderUnavailable


class StaticProviderRegistry(ProviderRegistry):
    """The catalog may name any provider the API knows (admins can set models up before the keys exist); only
    configured ones serve, the others (None here) answer 503 `provider_unavailable`."""

    def __init__(self, providers: Mapping[str, LLMProvider | None]) -> None:
        self._providers = {name: provider for name, provider in providers.items() if provider is not None}
        self._names = frozenset(providers)

    def get(self, provider: str) -> LLMProvider:
        try:
            return self._providers[provider]
        except KeyError:
            raise ProviderUnavailable(f"provider {provider!r} is not configured") from None

    def names(self) -> frozenset[str]:
        return self._names
