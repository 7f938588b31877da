from typing import Annotated
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Router, get, patch, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from application.admin.balance import AdjustBalance, AdjustmentResult, BalanceAdjustment
from application.admin.deployments import DeploymentHealthList, ListDeployments
from application.admin.usage import GetUsage, UsageReport
from application.admin.users import GetUser, ListUsers, ListUserTransactions, UpdateUser, UserPatch
from application.comparison.billing import GetKeysActivity, KeysActivityReport
from application.generations.queries import InspectGeneration, SearchGenerations
from application.generations.views import GenerationRecordPage, GenerationRecordView
from application.ports.generations import GenerationFilter, UsageGrouping
from application.ports.persistence import IdempotencyKeyReused
from application.views import TransactionPage, UserPage, UserView
from domain.credits import InvalidAmount
from domain.generation import GenerationNotFound, GenerationStatus
from domain.user import LastAdmin, UserNotFound
from domain.wallet import BalanceOutOfRange
from entrypoints.http.guards import require_admin
from entrypoints.http.openapi import declared
from entrypoints.http.pagination import Cursor, Limit, Since, Until, instant, page_request
from entrypoints.http.routes.models import admin_models_handlers

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe: the same key and body return the first response; another body -> 409.",
    ),
]


@get("/users", description=ListUsers.__doc__)
@inject
async def list_users(use_case: FromDishka[ListUsers], limit: Limit = 50, cursor: Cursor = None) -> UserPage:
    return await use_case(page_request(limit, cursor))


@get("/users/{user_id:uuid}", description=GetUser.__doc__, opt=declared(UserNotFound))
@inject
async def get_user(user_id: FromPath[UUID], use_case: FromDishka[GetUser]) -> UserView:
    return await use_case(user_id)


@patch(
    "/users/{user_id:uuid}",
    description=UpdateUser.__doc__,
    opt=declared(UserNotFound, LastAdmin),
)
@inject
async def update_user(user_id: FromPath[UUID], data: JSONBody[UserPatch], use_case: FromDishka[UpdateUser]) -> UserView:
    return await use_case(user_id, data)


@post(
    "/users/{user_id:uuid}/balance",
    status_code=HTTP_200_OK,
    description=AdjustBalance.__doc__,
    opt=declared(UserNotFound, IdempotencyKeyReused, InvalidAmount, BalanceOutOfRange),
)
@inject
async def adjust_balance(
    user_id: FromPath[UUID],
    data: JSONBody[BalanceAdjustment],
    use_case: FromDishka[AdjustBalance],
    idempotency_key: IdempotencyKey = None,
) -> AdjustmentResult:
    return await use_case(user_id, data, idempotency_key=idempotency_key)


@get(
    "/users/{user_id:uuid}/transactions",
    description=ListUserTransactions.__doc__,
    opt=declared(UserNotFound),
)
@inject
async def user_transactions(
    user_id: FromPath[UUID], use_case: FromDishka[ListUserTransactions], limit: Limit = 50, cursor: Cursor = None
) -> TransactionPage:
    return await use_case(user_id, page_request(limit, cursor))


@get("/usage", description=GetUsage.__doc__)
@inject
async def usage(
    use_case: FromDishka[GetUsage],
    group_by: FromQuery[UsageGrouping] = UsageGrouping.USER,
    since: Since = None,
    until: Until = None,
) -> UsageReport:
    return await use_case(group_by, instant(since), instant(until))


@get("/generations", description=SearchGenerations.__doc__)
@inject
async def search_generations(
    use_case: FromDishka[SearchGenerations],
    user_id: Annotated[UUID | None, QueryParameter(description="One user's generations")] = None,
    model: Annotated[str | None, QueryParameter(max_length=64, description="One catalog model id")] = None,
    status: FromQuery[GenerationStatus | None] = None,
    api_key: Annotated[str | None, QueryParameter(max_length=64, description="Those run with one API key")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> GenerationRecordPage:
    where = GenerationFilter(
        user_id=user_id, model=model, status=status, api_key=api_key, since=instant(since), until=instant(until)
    )
    return await use_case(where, page_request(limit, cursor))


@get("/generations/{generation_id:uuid}", description=InspectGeneration.__doc__, opt=declared(GenerationNotFound))
@inject
async def inspect_generation(
    generation_id: FromPath[UUID], use_case: FromDishka[InspectGeneration]
) -> GenerationRecordView:
    return await use_case(generation_id)


@get("/deployments", description=ListDeployments.__doc__)
@inject
async def list_deployments(use_case: FromDishka[ListDeployments]) -> DeploymentHealthList:
    return await use_case()


@get("/keys/activity", description=GetKeysActivity.__doc__)
@inject
async def keys_activity(use_case: FromDishka[GetKeysActivity]) -> KeysActivityReport:
    return await use_case()


router = Router(
    "/api/v1/admin",
    route_handlers=[
        list_users,
        get_user,
        update_user,
        adjust_balance,
        user_transactions,
        usage,
        search_generations,
        inspect_generation,
        keys_activity,
        list_deployments,
        *admin_models_handlers,
    ],
    guards=[require_admin],
    tags=["admin"],
    security=[{"BearerAuth": []}],
)
