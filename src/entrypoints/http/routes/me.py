from dishka.integrations.litestar import FromDishka, inject
from litestar import Router, get

from application.accounts.me import GetMe, GetMyBalance, ListMyTransactions
from application.views import BalanceView, TransactionPage, UserView
from entrypoints.http.guards import require_user
from entrypoints.http.pagination import Cursor, Limit, page_request


@get("/", description=GetMe.__doc__)
@inject
async def me(use_case: FromDishka[GetMe]) -> UserView:
    return await use_case()


@get("/balance", description=GetMyBalance.__doc__)
@inject
async def balance(use_case: FromDishka[GetMyBalance]) -> BalanceView:
    return await use_case()


@get("/transactions", description=ListMyTransactions.__doc__)
@inject
async def transactions(
    use_case: FromDishka[ListMyTransactions], limit: Limit = 50, cursor: Cursor = None
) -> TransactionPage:
    return await use_case(page_request(limit, cursor))


router = Router(
    "/api/v1/me",
    route_handlers=[me, balance, transactions],
    guards=[require_user],
    tags=["me"],
    security=[{"BearerAuth": []}],
)
