from dataclasses import dataclass

from domain.errors import Conflict, NotFound
from domain.pricing import Pricing


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_detail = "No enabled model has this id."


class ModelExists(Conflict):
    code = "model_exists"
    default_detail = "A model with this id exists."


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
