from collections.abc import Mapping, Sequence

from application.ports.llm import LLMProvider, ProviderRegistry
from domain.errors import ProviderUnavailable

KNOWN_PROVIDERS = ("openai", "anthropic", "gemini", "simulator", "local")


class StaticProviderRegistry(ProviderRegistry):
    """Every known provider may be named in the catalog (admins can set models up before the keys exist); only
    configured ones serve, the others answer 503 `provider_unavailable`."""

    def __init__(self, providers: Mapping[str, LLMProvider], known: Sequence[str] = KNOWN_PROVIDERS) -> None:
        self._providers = dict(providers)
        self._known = tuple(dict.fromkeys([*known, *providers]))

    def get(self, provider: str) -> LLMProvider:
        try:
            return self._providers[provider]
        except KeyError:
            raise ProviderUnavailable(f"provider {provider!r} is not configured") from None

    def names(self) -> Sequence[str]:
        return self._known
