"""Models and pricing: the catalog with every price, a model's settings, enabling, disabling and deleting."""

from typing import Any, get_args

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar_htmx import HTMXRequest

from application.catalog.use_cases import (
    AdminListModels,
    CreateModel,
    DeleteModel,
    GetModel,
    ModelPatch,
    NewModel,
    ProviderName,
    UpdateModel,
)
from application.catalog.views import ModelView
from application.ports.persistence import PageRequest
from domain.errors import DomainError
from entrypoints.console.forms import FieldErrors, FormInvalid, errors_of, parse
from entrypoints.console.rendering import form_page, page
from entrypoints.http.pagination import Cursor

Form = URLEncodedBody[dict[str, str]]
PAGE_SIZE = 100
PROVIDERS = get_args(ProviderName)
PRICING = "pricing."
"""Inputs named `pricing.<field>` fill the nested `pricing` object, so a refusal names the field the API names."""


def model_form(data: dict[str, str]) -> dict[str, Any]:
    pricing = {name.removeprefix(PRICING): value for name, value in data.items() if name.startswith(PRICING)}
    fields: dict[str, Any] = {name: value for name, value in data.items() if not name.startswith(PRICING)}
    return fields | {"pricing": {name: value for name, value in pricing.items() if value != ""}}


async def _catalog(
    request: HTMXRequest,
    use_case: AdminListModels,
    *,
    cursor: str | None = None,
    errors: FieldErrors | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> Template:
    models = await use_case(PageRequest(limit=PAGE_SIZE, cursor=cursor))
    context: dict[str, Any] = {"models": models, "form": form or {}, "providers": PROVIDERS, "notice": notice}
    if errors:
        return form_page(request, "pages/models.html", errors, **context)
    return page(request, "pages/models.html", errors={}, **context)


@get("/models")
@inject
async def model_list(
    request: HTMXRequest,
    use_case: FromDishka[AdminListModels],
    cursor: Cursor = None,
    deleted: FromQuery[str | None] = None,
) -> Template:
    notice = None if deleted is None else f"Model {deleted} deleted; its past generations keep their records."
    return await _catalog(request, use_case, cursor=cursor, notice=notice)


@post("/models")
@inject
async def create_model(
    request: HTMXRequest, data: Form, use_case: FromDishka[CreateModel], models: FromDishka[AdminListModels]
) -> Template | Redirect:
    try:
        created = await use_case(parse(model_form(data), NewModel))
    except FormInvalid as invalid:
        return await _catalog(request, models, errors=invalid.errors, form=data)
    except DomainError as error:
        return await _catalog(request, models, errors=errors_of(error, field="id"), form=data)
    return Redirect(f"/admin/models/{created.id}", status_code=303)


def _model(
    request: HTMXRequest, model: ModelView, *, errors: FieldErrors | None = None, notice: str | None = None
) -> Template:
    """Rendered from what the use case returned: the model cache of this instance may lag a write by a moment."""
    providers = PROVIDERS if model.provider in PROVIDERS else (*PROVIDERS, model.provider)  # a PROVIDER_INSTANCES one
    context: dict[str, Any] = {"model": model, "providers": providers, "notice": notice}
    if errors:
        return form_page(request, "pages/model.html", errors, **context)
    return page(request, "pages/model.html", errors={}, **context)


@get("/models/{model_id:str}")
@inject
async def model_detail(request: HTMXRequest, model_id: FromPath[str], use_case: FromDishka[GetModel]) -> Template:
    return _model(request, await use_case(model_id))


@post("/models/{model_id:str}")
@inject
async def update_model(
    request: HTMXRequest,
    model_id: FromPath[str],
    data: Form,
    use_case: FromDishka[UpdateModel],
    get_model: FromDishka[GetModel],
) -> Template:
    """The whole form is the change: a blank cache price falls back to the input price, a blank description is
    no description."""
    try:
        change = parse(model_form(data), ModelPatch)
        if "description" in data:
            change = msgspec.structs.replace(change, description=data["description"])
        updated = await use_case(model_id, change)
    except FormInvalid as invalid:
        return _model(request, await get_model(model_id), errors=invalid.errors)
    except DomainError as error:
        return _model(request, await get_model(model_id), errors=errors_of(error))
    state = "enabled" if updated.enabled else "disabled"
    return _model(request, updated, notice=f"Saved {updated.id} ({state}).")


@post("/models/{model_id:str}/enabled")
@inject
async def switch_model(
    request: HTMXRequest,
    model_id: FromPath[str],
    data: Form,
    use_case: FromDishka[UpdateModel],
    models: FromDishka[AdminListModels],
) -> Template:
    try:
        updated = await use_case(model_id, parse(data, ModelPatch))
    except (FormInvalid, DomainError) as error:
        errors = error.errors if isinstance(error, FormInvalid) else errors_of(error)
        return await _catalog(request, models, errors=errors)
    state = "enabled: clients can use it" if updated.enabled else "disabled: clients no longer see it"
    return await _catalog(request, models, notice=f"{updated.id} is {state}.")


@post("/models/{model_id:str}/delete")
@inject
async def delete_model(
    request: HTMXRequest, model_id: FromPath[str], use_case: FromDishka[DeleteModel], get_model: FromDishka[GetModel]
) -> Template | Redirect:
    try:
        await use_case(model_id)
    except DomainError as error:
        return _model(request, await get_model(model_id), errors=errors_of(error, field="delete"))
    return Redirect(f"/admin/models?deleted={model_id}", status_code=303)


handlers: list[Any] = [model_list, create_model, model_detail, update_model, switch_model, delete_model]
