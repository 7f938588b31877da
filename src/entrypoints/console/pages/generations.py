"""Generations of every user, filtered by user, model, status, API key and days; one generation in full."""

from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import get
from litestar.params import FromPath
from litestar.response import Template
from litestar_htmx import HTMXRequest

from application.catalog.use_cases import AdminListModels
from application.generations.queries import InspectGeneration, SearchGenerations
from application.ports.generations import GenerationFilter
from application.ports.persistence import PageRequest
from domain.errors import DomainError
from domain.generation import GenerationStatus
from entrypoints.console.forms import FieldErrors, FormInvalid, errors_of, parse
from entrypoints.console.pages.window import DayWindow
from entrypoints.console.rendering import form_page, page

PAGE_SIZE = 50
FILTERS = ("user_id", "model", "status", "api_key", "from", "to")
Short = Annotated[str, msgspec.Meta(max_length=64)]


class GenerationQuery(DayWindow, frozen=True, kw_only=True):
    user_id: UUID | None = None
    model: Short | None = None
    status: GenerationStatus | None = None
    api_key: Short | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=512)] | None = None

    def where(self) -> GenerationFilter:
        since, until = self.bounds()
        return GenerationFilter(
            user_id=self.user_id, model=self.model, status=self.status, api_key=self.api_key, since=since, until=until
        )


@get("/generations")
@inject
async def generation_list(
    request: HTMXRequest, use_case: FromDishka[SearchGenerations], catalog: FromDishka[AdminListModels]
) -> Template:
    """Filters come as text and are checked here, so a bad one is shown beside its input, never a bare 400."""
    filters = {name: value.strip() for name in FILTERS if (value := request.query_params.get(name, ""))}
    errors: FieldErrors = {}
    found = None
    try:
        query = parse(filters | {"cursor": request.query_params.get("cursor", "")}, GenerationQuery)
        found = await use_case(query.where(), PageRequest(limit=PAGE_SIZE, cursor=query.cursor))
    except FormInvalid as invalid:
        errors = invalid.errors
    except DomainError as error:
        errors = errors_of(error)
    context: dict[str, Any] = {
        "generations": found,
        "filters": filters,
        "statuses": list(GenerationStatus),
        "models": (await catalog(PageRequest(limit=200))).items,
    }
    if errors:
        return form_page(request, "pages/generations.html", errors, partial="pages/generations/_rows.html", **context)
    return page(request, "pages/generations.html", partial="pages/generations/_rows.html", errors={}, **context)


@get("/generations/{generation_id:uuid}")
@inject
async def generation_detail(
    request: HTMXRequest, generation_id: FromPath[UUID], use_case: FromDishka[InspectGeneration]
) -> Template:
    return page(request, "pages/generation.html", generation=await use_case(generation_id))


handlers: list[Any] = [generation_list, generation_detail]
