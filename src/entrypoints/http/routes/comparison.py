"""Text comparison: TypeIDs (admin), API keys, HMAC login, subscriptions, references and comparisons."""

from typing import Annotated
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Router, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from application.comparison.billing import GetKeyBilling, KeyBilling
from application.comparison.key_login import KeyLogin, KeyLoginRequest, KeyTokenPair
from application.comparison.keys import (
    CreatedKey,
    CreateKey,
    KeyList,
    KeyPatch,
    KeyView,
    ListKeys,
    NewKey,
    RevokeKey,
    UpdateKey,
)
from application.comparison.subscription import GetSubscription, SubscriptionView
from application.comparison.texts import (
    CompareRequest,
    CompareText,
    ComparisonView,
    CreateReference,
    InvalidBase64,
    InvalidUtf8,
    KeyTokenRequired,
    NewReference,
    ReferenceNotFound,
    ReferenceQuotaExceeded,
    ReferenceView,
    UnparseableScore,
)
from application.comparison.typeids import (
    CreateTypeId,
    DeleteTypeId,
    GetTypeId,
    ListTypeIds,
    NewTypeId,
    ReplaceTypeId,
    TypeIdFields,
    TypeIdList,
    TypeIdView,
)
from domain.api_key import KeyCreditLimit, KeyIsRevoked, KeyNotFound, KeyRevoked, SubscriptionInactive
from domain.credits import InvalidAmount
from domain.errors import ProviderUnavailable, TextTooLarge, UpstreamError
from domain.hmac_signature import InvalidSignature, ReplayedNonce, StaleTimestamp
from domain.typeid import TypeIdInUse, TypeIdNotFound, TypeIdTaken, UnknownModel
from domain.wallet import InsufficientBalance
from entrypoints.http.guards import require_admin, require_user
from entrypoints.http.openapi import declared
from entrypoints.http.pagination import Cursor, Limit, Since, Until, instant, page_request

BEARER: list[dict[str, list[str]]] = [{"BearerAuth": []}]
KEY_TOKEN = (KeyTokenRequired, SubscriptionInactive, TextTooLarge, InvalidBase64, InvalidUtf8)
"""What every route of a key-scoped token may raise: the token's key and subscription, the text it sends."""


@post(
    "/types",
    status_code=HTTP_201_CREATED,
    guards=[require_admin],
    description=CreateTypeId.__doc__,
    opt=declared(TypeIdTaken, UnknownModel),
)
@inject
async def create_type(data: JSONBody[NewTypeId], use_case: FromDishka[CreateTypeId]) -> TypeIdView:
    return await use_case(data)


@get("/types", guards=[require_admin], description=ListTypeIds.__doc__)
@inject
async def list_types(use_case: FromDishka[ListTypeIds], limit: Limit = 50, cursor: Cursor = None) -> TypeIdList:
    return await use_case(page_request(limit, cursor))


@get("/types/{typeid:str}", guards=[require_admin], description=GetTypeId.__doc__, opt=declared(TypeIdNotFound))
@inject
async def get_type(typeid: FromPath[str], use_case: FromDishka[GetTypeId]) -> TypeIdView:
    return await use_case(typeid)


@put(
    "/types/{typeid:str}",
    guards=[require_admin],
    description=ReplaceTypeId.__doc__,
    opt=declared(TypeIdNotFound, UnknownModel),
)
@inject
async def replace_type(
    typeid: FromPath[str], data: JSONBody[TypeIdFields], use_case: FromDishka[ReplaceTypeId]
) -> TypeIdView:
    return await use_case(typeid, data)


@delete(
    "/types/{typeid:str}",
    status_code=HTTP_204_NO_CONTENT,
    guards=[require_admin],
    description=DeleteTypeId.__doc__,
    opt=declared(TypeIdNotFound, TypeIdInUse),
)
@inject
async def delete_type(typeid: FromPath[str], use_case: FromDishka[DeleteTypeId]) -> None:
    await use_case(typeid)


@post(
    "/keys",
    status_code=HTTP_201_CREATED,
    guards=[require_admin],
    description=CreateKey.__doc__,
    opt=declared(InvalidAmount),
)
@inject
async def create_key(data: JSONBody[NewKey], use_case: FromDishka[CreateKey]) -> CreatedKey:
    return await use_case(data)


@patch(
    "/keys/{api_key:str}",
    guards=[require_admin],
    description=UpdateKey.__doc__,
    opt=declared(KeyNotFound, KeyIsRevoked, InvalidAmount),
)
@inject
async def update_key(api_key: FromPath[str], data: JSONBody[KeyPatch], use_case: FromDishka[UpdateKey]) -> KeyView:
    return await use_case(api_key, data)


@delete(
    "/keys/{api_key:str}",
    status_code=HTTP_204_NO_CONTENT,
    guards=[require_admin],
    description=RevokeKey.__doc__,
    opt=declared(KeyNotFound),
)
@inject
async def revoke_key(api_key: FromPath[str], use_case: FromDishka[RevokeKey]) -> None:
    await use_case(api_key)


@get("/keys", description=ListKeys.__doc__)
@inject
async def list_keys(
    use_case: FromDishka[ListKeys],
    user_id: Annotated[UUID | None, QueryParameter(description="Admins: one user's keys")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> KeyList:
    return await use_case(user_id, page_request(limit, cursor))


@get("/subscription/{api_key:str}", description=GetSubscription.__doc__, opt=declared(KeyNotFound))
@inject
async def subscription(api_key: FromPath[str], use_case: FromDishka[GetSubscription]) -> SubscriptionView:
    return await use_case(api_key)


@get("/billing/{api_key:str}", description=GetKeyBilling.__doc__, opt=declared(KeyNotFound))
@inject
async def billing(
    api_key: FromPath[str],
    use_case: FromDishka[GetKeyBilling],
    since: Since = None,
    until: Until = None,
) -> KeyBilling:
    return await use_case(api_key, instant(since), instant(until))


@post(
    "/auth",
    status_code=HTTP_200_OK,
    description=KeyLogin.__doc__,
    opt=declared(InvalidSignature, StaleTimestamp, ReplayedNonce, KeyRevoked, SubscriptionInactive),
)
@inject
async def key_login(data: JSONBody[KeyLoginRequest], use_case: FromDishka[KeyLogin]) -> KeyTokenPair:
    return await use_case(data)


@post(
    "/reference",
    status_code=HTTP_201_CREATED,
    description=CreateReference.__doc__,
    opt=declared(*KEY_TOKEN, ReferenceQuotaExceeded),
)
@inject
async def create_reference(data: JSONBody[NewReference], use_case: FromDishka[CreateReference]) -> ReferenceView:
    return await use_case(data)


@post(
    "/compare/{reference_id:uuid}",
    status_code=HTTP_200_OK,
    description=CompareText.__doc__,
    opt=declared(
        *KEY_TOKEN,
        ReferenceNotFound,
        InsufficientBalance,
        KeyCreditLimit,
        UnparseableScore,
        UpstreamError,
        ProviderUnavailable,
    ),
)
@inject
async def compare(
    reference_id: FromPath[UUID], data: JSONBody[CompareRequest], use_case: FromDishka[CompareText]
) -> ComparisonView:
    return await use_case(reference_id, data)


router = Router(
    "/api/v1",
    route_handlers=[
        create_type,
        list_types,
        get_type,
        replace_type,
        delete_type,
        create_key,
        update_key,
        revoke_key,
        list_keys,
        subscription,
        billing,
        create_reference,
        compare,
    ],
    guards=[require_user],
    tags=["text comparison"],
    security=BEARER,
)
login_router = Router("/api/v1", route_handlers=[key_login], tags=["text comparison"])
