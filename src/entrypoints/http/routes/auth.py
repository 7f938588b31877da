from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Request, Router, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from application.accounts.login import Credentials, InvalidCredentials, LoginUser
from application.accounts.refresh import Logout, RefreshRequest, RefreshSession, TokenReused
from application.accounts.register import RegisterUser, Registration
from application.ports.security import InvalidToken
from application.views import TokenPair, UserView
from domain.errors import RateLimited
from domain.user import UsernameTaken
from entrypoints.http.identity import client_address
from entrypoints.http.openapi import declared


@post(
    "/register",
    status_code=HTTP_201_CREATED,
    description=RegisterUser.__doc__,
    opt=declared(UsernameTaken, RateLimited),
)
@inject
async def register(
    data: JSONBody[Registration], request: Request[Any, Any, Any], use_case: FromDishka[RegisterUser]
) -> UserView:
    return await use_case(data, client_address=client_address(request))


@post(
    "/login",
    status_code=HTTP_200_OK,
    description=LoginUser.__doc__,
    opt=declared(InvalidCredentials, RateLimited),
)
@inject
async def login(
    data: JSONBody[Credentials], request: Request[Any, Any, Any], use_case: FromDishka[LoginUser]
) -> TokenPair:
    return await use_case(data, client_address=client_address(request))


@post(
    "/refresh",
    status_code=HTTP_200_OK,
    description=RefreshSession.__doc__,
    opt=declared(InvalidToken, TokenReused),
)
@inject
async def refresh(data: JSONBody[RefreshRequest], use_case: FromDishka[RefreshSession]) -> TokenPair:
    return await use_case(data)


@post("/logout", status_code=HTTP_204_NO_CONTENT, description=Logout.__doc__)
@inject
async def logout(data: JSONBody[RefreshRequest], use_case: FromDishka[Logout]) -> None:
    await use_case(data)


router = Router("/api/v1/auth", route_handlers=[register, login, refresh, logout], tags=["auth"], security=[])
