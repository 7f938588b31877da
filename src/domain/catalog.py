from dataclasses import dataclass, field

from domain.errors import Conflict, NotFound
from domain.pricing import Pricing
from domain.routing import Deployment


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_detail = "No enabled model has this id."


class ModelExists(Conflict):
    code = "model_exists"
    default_detail = "A model with this id exists."


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A model clients may call: which deployments serve it, at which price. `provider`/`upstream_model` name its
    default deployment: the first of the lowest priority (the only one, unless `deployments` lists more)."""

    id: str
    provider: str
    upstream_model: str
    description: str
    pricing: Pricing
    max_output_tokens: int
    enabled: bool
    deployments: tuple[Deployment, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.deployments:
            object.__setattr__(self, "deployments", (Deployment(self.provider, self.upstream_model),))


def default_deployment(deployments: tuple[Deployment, ...]) -> Deployment:
    """The first of the lowest priority: what `provider`/`upstream_model` show for clients of one deployment."""
    return min(deployments, key=lambda d: d.priority)
