from collections.abc import Mapping, Sequence

from application.ports.llm import LLMProvider, ProviderRegistry
from domain.errors import ProviderUnavailable


class StaticProviderRegistry(ProviderRegistry):
    def __init__(self, providers: Mapping[str, LLMProvider]) -> None:
        self._providers = dict(providers)

    def get(self, provider: str) -> LLMProvider:
        try:
            return self._providers[provider]
        except KeyError:
            raise ProviderUnavailable(f"provider {provider!r} is not configured") from None

    def names(self) -> Sequence[str]:
        return tuple(self._providers)
