"""TypeIDs: how two texts are compared. Create one (its id generated when left blank), replace it, delete it while
no key uses it."""

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar_htmx import HTMXRequest

from application.catalog.use_cases import AdminListModels
from application.catalog.views import ModelView
from application.comparison.typeids import (
    CreateTypeId,
    DeleteTypeId,
    GetTypeId,
    ListTypeIds,
    NewTypeId,
    ReplaceTypeId,
    TypeIdFields,
    TypeIdView,
)
from application.ports.persistence import PageRequest
from domain.errors import DomainError
from entrypoints.console.forms import FieldErrors, FormInvalid, errors_of, parse
from entrypoints.console.rendering import form_page, page
from entrypoints.http.pagination import Cursor

Form = URLEncodedBody[dict[str, str]]
PAGE_SIZE = 100
CATALOG_PAGE = PageRequest(limit=200)


async def _models(catalog: AdminListModels) -> list[ModelView]:
    return list((await catalog(CATALOG_PAGE)).items)


def typeid_form(data: dict[str, str], models: list[ModelView]) -> dict[str, str]:
    """`llm` left blank is the chosen model's provider: the pair the catalog holds."""
    providers = {model.id: model.provider for model in models}
    if not data.get("llm") and data.get("model") in providers:
        return data | {"llm": providers[data["model"]]}
    return data


@get("/typeids")
@inject
async def typeid_list(
    request: HTMXRequest,
    use_case: FromDishka[ListTypeIds],
    cursor: Cursor = None,
    deleted: FromQuery[str | None] = None,
) -> Template:
    notice = None if deleted is None else f"TypeID {deleted} deleted."
    typeids = await use_case(PageRequest(limit=PAGE_SIZE, cursor=cursor))
    return page(request, "pages/typeids.html", typeids=typeids, notice=notice)


async def _editor(
    request: HTMXRequest,
    catalog: AdminListModels,
    *,
    typeid: TypeIdView | None,
    form: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    notice: str | None = None,
) -> Template:
    context: dict[str, Any] = {
        "typeid": typeid,
        "form": form if form is not None else _values(typeid),
        "models": await _models(catalog),
        "notice": notice,
    }
    if errors:
        return form_page(request, "pages/typeid.html", errors, **context)
    return page(request, "pages/typeid.html", errors={}, **context)


def _values(typeid: TypeIdView | None) -> dict[str, str]:
    if typeid is None:
        return {"scale": "10", "user": "Reference:\n{reference}\n\nText:\n{text}\n\nScore the text from 0 to {scale}."}
    fields = ("name", "scale", "system", "user", "model", "llm", "description")
    return {name: "" if getattr(typeid, name) is None else str(getattr(typeid, name)) for name in fields}


@get("/typeids/new")
@inject
async def new_typeid(request: HTMXRequest, catalog: FromDishka[AdminListModels]) -> Template:
    return await _editor(request, catalog, typeid=None)


@post("/typeids")
@inject
async def create_typeid(
    request: HTMXRequest, data: Form, use_case: FromDishka[CreateTypeId], catalog: FromDishka[AdminListModels]
) -> Template | Redirect:
    try:
        created = await use_case(parse(typeid_form(data, await _models(catalog)), NewTypeId))
    except FormInvalid as invalid:
        return await _editor(request, catalog, typeid=None, form=data, errors=invalid.errors)
    except DomainError as error:
        return await _editor(request, catalog, typeid=None, form=data, errors=errors_of(error, field="typeid"))
    return Redirect(f"/admin/typeids/{created.typeid}?created=1", status_code=303)


@get("/typeids/{typeid:str}")
@inject
async def typeid_detail(
    request: HTMXRequest,
    typeid: FromPath[str],
    use_case: FromDishka[GetTypeId],
    catalog: FromDishka[AdminListModels],
    created: FromQuery[bool] = False,
) -> Template:
    notice = "TypeID created; issue a key for it on the API keys page." if created else None
    return await _editor(request, catalog, typeid=await use_case(typeid), notice=notice)


@post("/typeids/{typeid:str}")
@inject
async def replace_typeid(
    request: HTMXRequest,
    typeid: FromPath[str],
    data: Form,
    use_case: FromDishka[ReplaceTypeId],
    get_typeid: FromDishka[GetTypeId],
    catalog: FromDishka[AdminListModels],
) -> Template:
    """Every field is replaced: a blank name or description is none."""
    current = await get_typeid(typeid)
    try:
        replaced = await use_case(typeid, parse(typeid_form(data, await _models(catalog)), TypeIdFields))
    except FormInvalid as invalid:
        return await _editor(request, catalog, typeid=current, form=data, errors=invalid.errors)
    except DomainError as error:
        return await _editor(request, catalog, typeid=current, form=data, errors=errors_of(error))
    return await _editor(request, catalog, typeid=replaced, notice="Saved: keys of this TypeID use it from now on.")


@post("/typeids/{typeid:str}/delete")
@inject
async def delete_typeid(
    request: HTMXRequest,
    typeid: FromPath[str],
    use_case: FromDishka[DeleteTypeId],
    get_typeid: FromDishka[GetTypeId],
    catalog: FromDishka[AdminListModels],
) -> Template | Redirect:
    try:
        await use_case(typeid)
    except DomainError as error:
        current = await get_typeid(typeid)
        return await _editor(request, catalog, typeid=current, errors=errors_of(error, field="delete"))
    return Redirect(f"/admin/typeids?deleted={typeid}", status_code=303)


handlers: list[Any] = [typeid_list, new_typeid, create_typeid, typeid_detail, replace_typeid, delete_typeid]
