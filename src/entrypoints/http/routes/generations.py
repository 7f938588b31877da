from typing import Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Router, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from application.generations.create import CreateGeneration, completed_view
from application.generations.queries import GetGeneration, ListGenerations
from application.generations.views import GenerationPage, GenerationRequest, GenerationView
from domain.api_key import KeyCreditLimit
from domain.catalog import ModelNotFound
from domain.errors import ProviderUnavailable, UnsupportedParameter, UpstreamError
from domain.generation import GenerationNotFound
from domain.wallet import InsufficientBalance
from entrypoints.http.guards import require_user
from entrypoints.http.openapi import declared
from entrypoints.http.pagination import Cursor, Limit, page_request
from entrypoints.http.sse import GENERATION_EVENTS, generation_events

GENERATION_ERRORS = (
    InsufficientBalance,
    KeyCreditLimit,
    ModelNotFound,
    UnsupportedParameter,
    UpstreamError,
    ProviderUnavailable,
)
"""What starting a generation may raise, on every surface: the balance or the key's credit limit, the model, a
parameter its provider cannot honour, the provider."""


@post(
    "/",
    status_code=HTTP_200_OK,
    description=CreateGeneration.__doc__,
    responses={
        200: ResponseSpec(
            GenerationView,
            description="The generation; with `stream: true`, `text/event-stream` events instead",
            generate_examples=False,
        ),
    },
    opt=declared(*GENERATION_ERRORS, events=GENERATION_EVENTS),
)
@inject
async def create_generation(data: JSONBody[GenerationRequest], use_case: FromDishka[CreateGeneration]) -> Any:
    run = await use_case(data)
    if data.stream:
        return generation_events(run)
    return completed_view(run.started, await run.whole_answer())


@get("/", description=ListGenerations.__doc__)
@inject
async def list_generations(
    use_case: FromDishka[ListGenerations], limit: Limit = 50, cursor: Cursor = None
) -> GenerationPage:
    return await use_case(page_request(limit, cursor))


@get("/{generation_id:uuid}", description=GetGeneration.__doc__, opt=declared(GenerationNotFound))
@inject
async def get_generation(generation_id: FromPath[UUID], use_case: FromDishka[GetGeneration]) -> GenerationView:
    return await use_case(generation_id)


router = Router(
    "/api/v1/generations",
    route_handlers=[create_generation, list_generations, get_generation],
    guards=[require_user],
    tags=["generations"],
    security=[{"BearerAuth": []}],
)
