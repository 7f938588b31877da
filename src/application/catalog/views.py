from typing import Annotated, Any, ClassVar, Literal

import msgspec

from application.patterns import STORABLE_TEXT, whole
from application.ports.persistence import Page
from application.views import CreditsText
from domain.catalog import CatalogModel
from domain.credits import Credits, decimal_text
from domain.pricing import MAX_UNIT_TOKENS, Pricing
from domain.routing import MAX_PRIORITY, MAX_WEIGHT, MIN_PRIORITY, MIN_WEIGHT, Deployment

ModelId = Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"), examples=["dr14"])]
UpstreamModel = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=STORABLE_TEXT)]
Description = Annotated[str, msgspec.Meta(max_length=1000, pattern=STORABLE_TEXT)]
MaxOutputTokens = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
ProviderInstanceName = Annotated[
    str,
    msgspec.Meta(
        pattern=whole(r"[a-z][a-z0-9_-]{0,31}"),
        description="A built-in provider (`anthropic`, `gemini`, `local`, `openai`, `simulator`) or an instance "
        "named in `PROVIDER_INSTANCES`.",
        examples=["openai"],
    ),
]
Priority = Annotated[int, msgspec.Meta(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Lower is tried first.")]
Weight = Annotated[
    int, msgspec.Meta(ge=MIN_WEIGHT, le=MAX_WEIGHT, description="Share of the requests among its priority.")
]
MAX_DEPLOYMENTS = 16
# From 0 to 10,000 credits (MAX_PRICE_MICROS) with at most 6 fractional digits.
PRICE = whole(decimal_text("0|[1-9][0-9]{0,3}", signed=False) + r"|10000(\.0{1,6})?")
PriceText = Annotated[str, msgspec.Meta(pattern=PRICE, description='Credits per `unit_tokens`, e.g. `"20"`.')]
CachePriceText = Annotated[
    str,
    msgspec.Meta(
        pattern=PRICE,
        description="Credits per `unit_tokens` of prompt tokens the provider serves from (or writes to) its cache.",
    ),
]


class PricingView(msgspec.Struct, frozen=True, kw_only=True):
    """`cached_input_credits` / `cache_write_credits` are present only when set; absent, those prompt tokens
    cost `input_credits`."""

    unit_tokens: int
    input_credits: CreditsText
    output_credits: CreditsText
    cached_input_credits: CreditsText | msgspec.UnsetType = msgspec.UNSET
    cache_write_credits: CreditsText | msgspec.UnsetType = msgspec.UNSET

    example: ClassVar[dict[str, Any]] = {"unit_tokens": 100, "input_credits": "20", "output_credits": "20"}

    @classmethod
    def of(cls, pricing: Pricing) -> "PricingView":
        return cls(
            unit_tokens=pricing.unit_tokens,
            input_credits=str(pricing.input_credits),
            output_credits=str(pricing.output_credits),
            cached_input_credits=_text(pricing.cached_input_credits),
            cache_write_credits=_text(pricing.cache_write_credits),
        )


class PricingInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Omitted or null, `cached_input_credits` and `cache_write_credits` are `input_credits`. The pricing is set
    as a whole: a PATCH that gives one without them removes the cache prices."""

    unit_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_UNIT_TOKENS)]
    input_credits: PriceText
    output_credits: PriceText
    cached_input_credits: CachePriceText | None = None
    cache_write_credits: CachePriceText | None = None

    example: ClassVar[dict[str, Any]] = {
        "unit_tokens": 1000,
        "input_credits": "0.15",
        "output_credits": "0.6",
        "cached_input_credits": "0.075",
    }

    def to_pricing(self) -> Pricing:
        return Pricing(
            self.unit_tokens,
            Credits.parse(self.input_credits, field="pricing.input_credits"),
            Credits.parse(self.output_credits, field="pricing.output_credits"),
            cached_input_credits=_parsed(self.cached_input_credits, "pricing.cached_input_credits"),
            cache_write_credits=_parsed(self.cache_write_credits, "pricing.cache_write_credits"),
        )


def _text(price: Credits | None) -> str | msgspec.UnsetType:
    return msgspec.UNSET if price is None else str(price)


def _parsed(text: str | None, field: str) -> Credits | None:
    return None if text is None else Credits.parse(text, field=field)


class DeploymentInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    provider: ProviderInstanceName
    upstream_model: UpstreamModel
    priority: Priority = 0
    weight: Weight = 1

    example: ClassVar[dict[str, Any]] = {
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "priority": 0,
        "weight": 1,
    }

    def to_deployment(self) -> Deployment:
        return Deployment(self.provider, self.upstream_model, self.priority, self.weight)


Deployments = Annotated[list[DeploymentInput], msgspec.Meta(min_length=1, max_length=MAX_DEPLOYMENTS)]


class DeploymentView(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    upstream_model: str
    priority: int
    weight: int

    example: ClassVar[dict[str, Any]] = DeploymentInput.example

    @classmethod
    def of(cls, deployment: Deployment) -> "DeploymentView":
        return cls(
            provider=deployment.provider,
            upstream_model=deployment.upstream_model,
            priority=deployment.priority,
            weight=deployment.weight,
        )


class ModelView(msgspec.Struct, frozen=True, kw_only=True):
    """`provider`/`upstream_model` are its default deployment (the first of the lowest priority)."""

    id: str
    provider: str
    upstream_model: str
    description: str
    pricing: PricingView
    max_output_tokens: int
    enabled: bool
    deployments: list[DeploymentView]

    example: ClassVar[dict[str, Any]] = {
        "id": "dr14",
        "provider": "simulator",
        "upstream_model": "dr14",
        "description": "Built-in simulator priced like a large model: 100 tokens = 20 credits.",
        "pricing": PricingView.example,
        "max_output_tokens": 4096,
        "enabled": True,
        "deployments": [{"provider": "simulator", "upstream_model": "dr14", "priority": 0, "weight": 1}],
    }

    @classmethod
    def of(cls, model: CatalogModel) -> "ModelView":
        return cls(
            id=model.id,
            provider=model.provider,
            upstream_model=model.upstream_model,
            description=model.description,
            pricing=PricingView.of(model.pricing),
            max_output_tokens=model.max_output_tokens,
            enabled=model.enabled,
            deployments=[DeploymentView.of(d) for d in model.deployments],
        )


class ModelPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ModelView]
    next_cursor: str | None

    example: ClassVar[dict[str, Any]] = {"items": [ModelView.example], "next_cursor": None}

    @classmethod
    def of(cls, page: Page[CatalogModel]) -> "ModelPage":
        return cls(items=[ModelView.of(m) for m in page.items], next_cursor=page.next_cursor)


class OpenAIModel(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str

    example: ClassVar[dict[str, Any]] = {"id": "dr14", "object": "model", "created": 0, "owned_by": "simulator"}


class OpenAIModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]

    example: ClassVar[dict[str, Any]] = {"object": "list", "data": [OpenAIModel.example]}
