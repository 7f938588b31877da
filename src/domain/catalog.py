from dataclasses import dataclass

from domain.pricing import Pricing


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A model clients may call: which provider serves it, under which upstream name, at which price."""

    id: str
    provider: str
    upstream_model: str
    description: str
    pricing: Pricing
    max_output_tokens: int
    enabled: bool
