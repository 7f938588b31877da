"""Sign-in and sign-out: the login use case (and its throttles), admins only."""

from typing import Annotated, Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import get, post
from litestar.params import FromQuery, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar_htmx import HTMXRequest

from application.accounts.login import Credentials, LoginUser
from application.accounts.refresh import Logout, RefreshRequest
from application.ports.clock import Clock
from application.ports.security import AccessTokens
from domain.errors import DomainError
from domain.user import Role
from entrypoints.console.auth import CONSOLE_PATH, NotAnAdmin, sign_in, sign_out
from entrypoints.console.forms import FORM_LEVEL, FormInvalid, errors_of, parse
from entrypoints.console.rendering import form_page, page
from entrypoints.http.identity import client_address

Form = URLEncodedBody[dict[str, str]]
_PUBLIC = {"public": True}
NextPage = Annotated[str | None, QueryParameter(name="next")]


def _safe_next(target: str | None) -> str:
    """Only a console path: a crafted `next` never sends a signed-in admin to another site."""
    if target and target.startswith(f"{CONSOLE_PATH}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{CONSOLE_PATH}/"


@get("/login", opt=_PUBLIC)
async def sign_in_form(request: HTMXRequest, target: NextPage = None, reason: FromQuery[str | None] = None) -> Template:
    return page(request, "pages/login.html", next=_safe_next(target), reason=reason, errors={}, username="")


@post("/login", opt=_PUBLIC)
@inject
async def sign_in_submit(
    request: HTMXRequest,
    data: Form,
    login: FromDishka[LoginUser],
    logout: FromDishka[Logout],
    tokens: FromDishka[AccessTokens],
    clock: FromDishka[Clock],
) -> Template | Redirect:
    username, target = data.get("username", ""), _safe_next(data.get("next"))
    try:
        pair = await login(parse(data, Credentials), client_address=client_address(request))
    except FormInvalid as invalid:
        return form_page(request, "pages/login.html", invalid.errors, next=target, reason=None, username=username)
    except DomainError as error:
        errors = errors_of(error, field=FORM_LEVEL)
        return form_page(request, "pages/login.html", errors, next=target, reason=None, username=username)
    claims = tokens.decode(pair.access_token, clock.now())
    if claims.role is not Role.ADMIN:
        await logout(RefreshRequest(refresh_token=pair.refresh_token))
        errors = errors_of(NotAnAdmin(), field=FORM_LEVEL)
        return form_page(request, "pages/login.html", errors, next=target, reason=None, username=username)
    sign_in(request, user_id=claims.user_id, issued_at=claims.issued_at, refresh_token=pair.refresh_token)
    return Redirect(target, status_code=303)


@post("/logout")
@inject
async def sign_out_submit(request: HTMXRequest, logout: FromDishka[Logout]) -> Redirect:
    refresh_token = sign_out(request)
    if refresh_token:
        await logout(RefreshRequest(refresh_token=refresh_token))
    return Redirect(f"{CONSOLE_PATH}/login?reason=Signed+out.", status_code=303)


handlers: list[Any] = [sign_in_form, sign_in_submit, sign_out_submit]
