from typing import Any, ClassVar, Literal

import msgspec

from application.catalog.views import (
    DeploymentInput,
    Deployments,
    Description,
    MaxOutputTokens,
    ModelId,
    ModelPage,
    ModelView,
    OpenAIModel,
    OpenAIModelList,
    PricingInput,
    ProviderInstanceName,
    UpstreamModel,
)
from application.ports.catalog import Catalog
from application.ports.llm import ProviderRegistry
from application.ports.persistence import PageRequest, UnitOfWork
from domain.catalog import CatalogModel, ModelNotFound, default_deployment
from domain.errors import InvalidInput
from domain.routing import Deployment

PAGE_SIZE = 200
NO_SUCH_MODEL = "No model has this id."
ProviderName = Literal["anthropic", "gemini", "local", "openai", "simulator"]


class NewModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Either `provider` and `upstream_model` (one deployment), or `deployments`."""

    id: ModelId
    provider: ProviderInstanceName | None = None
    upstream_model: UpstreamModel | None = None
    deployments: Deployments | None = None
    pricing: PricingInput
    max_output_tokens: MaxOutputTokens
    description: Description = ""
    enabled: bool = True

    example: ClassVar[dict[str, Any]] = {
        "id": "gpt-4o-mini",
        "provider": "openai",
        "upstream_model": "gpt-4o-mini",
        "pricing": PricingInput.example,
        "max_output_tokens": 4096,
        "description": "OpenAI's small, fast model (needs OPENAI_API_KEY to answer)",
        "enabled": True,
    }


class ModelPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`deployments` replaces the list; `provider`/`upstream_model` change the model's only deployment."""

    provider: ProviderInstanceName | None = None
    upstream_model: UpstreamModel | None = None
    deployments: Deployments | None = None
    pricing: PricingInput | None = None
    max_output_tokens: MaxOutputTokens | None = None
    description: Description | None = None
    enabled: bool | None = None

    example: ClassVar[dict[str, Any]] = {
        "pricing": {"unit_tokens": 100, "input_credits": "18", "output_credits": "24", "cached_input_credits": "1.8"},
        "max_output_tokens": 2048,
    }


class ListModels:
    """The enabled models and their prices: `unit_tokens` tokens cost `input_credits` (prompt) and
    `output_credits` (completion); prompt tokens the provider serves from its cache cost `cached_input_credits`,
    those it writes to its cache `cache_write_credits` (each shown only when set: otherwise `input_credits`)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def __call__(self, page: PageRequest) -> ModelPage:
        return ModelPage.of(await self._catalog.list(page, enabled_only=True))


class ListOpenAIModels:
    """The enabled models, in the shape of OpenAI's `GET /v1/models`."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def __call__(self) -> OpenAIModelList:
        data: list[OpenAIModel] = []
        cursor: str | None = None
        while True:
            page = await self._catalog.list(PageRequest(limit=PAGE_SIZE, cursor=cursor), enabled_only=True)
            data.extend(OpenAIModel(id=m.id, owned_by=m.provider) for m in page.items)
            if (cursor := page.next_cursor) is None:
                return OpenAIModelList(data=data)


class AdminListModels:
    """Every model of the catalog, disabled ones included."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def __call__(self, page: PageRequest) -> ModelPage:
        return ModelPage.of(await self._catalog.list(page, enabled_only=False))


class GetModel:
    """One model of the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def __call__(self, model_id: str) -> ModelView:
        return ModelView.of(await _existing(self._catalog, model_id))


class CreateModel:
    """Add a model: which provider serves it (`anthropic`, `gemini`, `local`, `openai`, `simulator`, or an instance
    named in `PROVIDER_INSTANCES`), under which upstream name, and its price; or several `deployments` to route
    across (lowest `priority` first, by `weight` within one, failing over before the first token). Provider
    endpoints and keys come from the environment only."""

    def __init__(self, catalog: Catalog, uow: UnitOfWork, providers: ProviderRegistry) -> None:
        self._catalog = catalog
        self._uow = uow
        self._providers = providers

    async def __call__(self, new: NewModel) -> ModelView:
        deployments = _deployments(self._providers, new.deployments, new.provider, new.upstream_model)
        default = default_deployment(deployments)
        model = CatalogModel(
            id=new.id,
            provider=default.provider,
            upstream_model=default.upstream_model,
            deployments=deployments,
            description=new.description,
            pricing=new.pricing.to_pricing(),
            max_output_tokens=new.max_output_tokens,
            enabled=new.enabled,
        )
        await self._catalog.add(model)
        await self._uow.commit()
        return ModelView.of(model)


class UpdateModel:
    """Change what is given: deployments (or the provider and upstream name of its only one), price, output cap,
    description, enabled. A new price applies to generations started afterwards; running ones keep the price they
    started with."""

    def __init__(self, catalog: Catalog, uow: UnitOfWork, providers: ProviderRegistry) -> None:
        self._catalog = catalog
        self._uow = uow
        self._providers = providers

    async def __call__(self, model_id: str, patch: ModelPatch) -> ModelView:
        current = await _existing(self._catalog, model_id)
        deployments = _patched_deployments(self._providers, current, patch)
        default = default_deployment(deployments)
        model = CatalogModel(
            id=current.id,
            provider=default.provider,
            upstream_model=default.upstream_model,
            deployments=deployments,
            description=current.description if patch.description is None else patch.description,
            pricing=current.pricing if patch.pricing is None else patch.pricing.to_pricing(),
            max_output_tokens=current.max_output_tokens if patch.max_output_tokens is None else patch.max_output_tokens,
            enabled=current.enabled if patch.enabled is None else patch.enabled,
        )
        if not await self._catalog.update(model):
            raise ModelNotFound(NO_SUCH_MODEL)
        await self._uow.commit()
        return ModelView.of(model)


class DeleteModel:
    """Remove a model from the catalog; its past generations keep their records."""

    def __init__(self, catalog: Catalog, uow: UnitOfWork) -> None:
        self._catalog = catalog
        self._uow = uow

    async def __call__(self, model_id: str) -> None:
        if not await self._catalog.delete(model_id):
            raise ModelNotFound(NO_SUCH_MODEL)
        await self._uow.commit()


async def _existing(catalog: Catalog, model_id: str) -> CatalogModel:
    model = await catalog.get(model_id)
    if model is None:
        raise ModelNotFound(NO_SUCH_MODEL)
    return model


def _deployments(
    providers: ProviderRegistry,
    given: list[DeploymentInput] | None,
    provider: str | None,
    upstream_model: str | None,
) -> tuple[Deployment, ...]:
    """`deployments`, or the one `provider`/`upstream_model` name (given with `deployments`, they must name its
    default one, as a model read back shows them)."""
    if given is None:
        if provider is None:
            raise InvalidInput("give `provider` and `upstream_model`, or `deployments`", field="provider")
        if upstream_model is None:
            raise InvalidInput("give `upstream_model` with `provider`", field="upstream_model")
        given = [DeploymentInput(provider=provider, upstream_model=upstream_model)]
        fields = ["provider"]
    else:
        fields = [f"deployments[{i}].provider" for i in range(len(given))]
    deployments = tuple(d.to_deployment() for d in given)
    known = providers.names()
    for deployment, field in zip(deployments, fields, strict=True):
        if deployment.provider not in known:
            raise InvalidInput(f"no provider or PROVIDER_INSTANCES entry is named {deployment.provider!r}", field=field)
    keys = [d.key for d in deployments]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise InvalidInput("this provider and upstream model are listed twice", field=f"deployments[{i}]")
    default = default_deployment(deployments)
    if (provider or default.provider) != default.provider:
        raise InvalidInput("it must be the default deployment's provider (or left out)", field="provider")
    if (upstream_model or default.upstream_model) != default.upstream_model:
        raise InvalidInput("it must be the default deployment's upstream model (or left out)", field="upstream_model")
    return deployments


def _patched_deployments(
    providers: ProviderRegistry, current: CatalogModel, patch: ModelPatch
) -> tuple[Deployment, ...]:
    if patch.deployments is not None:
        return _deployments(providers, patch.deployments, patch.provider, patch.upstream_model)
    if patch.provider in {None, current.provider} and patch.upstream_model in {None, current.upstream_model}:
        return current.deployments  # unchanged: a form or a client sending back the default deployment
    if len(current.deployments) > 1:
        raise InvalidInput("the model has several deployments: patch `deployments`", field="provider")
    return _deployments(
        providers, None, patch.provider or current.provider, patch.upstream_model or current.upstream_model
    )
