"""The console's session: who signed in, checked against the database on every request.

The session is an encrypted cookie (`HttpOnly`, `SameSite=Strict`, `Secure` in production, path `/admin`) that holds
the user id, the moment the sign-in was issued and the refresh token of the sign-in (revoked on sign-out). It is
never trusted for the role: every request reads the principal's standing (the same read-through cache the bearer
auth uses), so a deactivated or demoted admin loses the console on their next click, on every instance. Forms are
protected by Litestar's double-submit CSRF middleware, mounted on the console router only: the JSON API, which
takes bearer tokens and no cookies, needs no CSRF token.
"""

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.types import ASGIApp

from application.ports.clock import Clock
from application.ports.security import IdentityProvider, InvalidToken, PrincipalReader
from domain.errors import Forbidden, Unauthenticated
from domain.user import Principal

CONSOLE_PATH = "/admin"
SESSION_COOKIE = "creditgate_console"
CSRF_COOKIE = "creditgate_console_csrf"
CSRF_HEADER = "x-csrftoken"
SESSION_SECONDS = 8 * 3600
_USER_ID, _ISSUED_AT, _REFRESH_TOKEN = "user_id", "issued_at", "refresh_token"


class NotAnAdmin(Forbidden):
    default_detail = "This account is not an admin: the console is for admins only."


def _derived(jwt_secret: str, purpose: str) -> bytes:
    """One operator secret, a distinct key per purpose: a session key never verifies a CSRF token or a JWT."""
    return hashlib.sha256(f"creditgate:{purpose}:{jwt_secret}".encode()).digest()


def _session(app: ASGIApp, secret: bytes, production: bool) -> ASGIApp:
    """Built with the app's middleware stack: Litestar copies a router's middleware definitions, and the backend's
    cipher cannot be copied."""
    session = CookieBackendConfig(
        secret=secret,
        key=SESSION_COOKIE,
        max_age=SESSION_SECONDS,
        path=CONSOLE_PATH,
        secure=production,
        httponly=True,
        samesite="strict",
    )
    return session.middleware(app)


def console_middleware(jwt_secret: str, *, production: bool) -> list[DefineMiddleware]:
    """Session first (the CSRF check may answer 403 before any handler runs, and needs nothing from it)."""
    csrf = CSRFConfig(
        secret=_derived(jwt_secret, "console-csrf").hex(),
        cookie_name=CSRF_COOKIE,
        cookie_path=CONSOLE_PATH,
        cookie_secure=production,
        cookie_httponly=True,
        cookie_samesite="strict",
        header_name=CSRF_HEADER,
    )
    session = DefineMiddleware(_session, secret=_derived(jwt_secret, "console-session"), production=production)
    return [session, DefineMiddleware(CSRFMiddleware, config=csrf)]


def in_console(request: Request[Any, Any, Any]) -> bool:
    path: str = request.scope["path"]
    return path == CONSOLE_PATH or path.startswith(f"{CONSOLE_PATH}/")


def sign_in(request: Request[Any, Any, Any], *, user_id: UUID, issued_at: datetime, refresh_token: str) -> None:
    request.set_session({_USER_ID: str(user_id), _ISSUED_AT: issued_at.isoformat(), _REFRESH_TOKEN: refresh_token})


def sign_out(request: Request[Any, Any, Any]) -> str | None:
    """Forget the session; the refresh token it held, for the caller to revoke."""
    refresh_token = request.session.get(_REFRESH_TOKEN)
    request.clear_session()
    return refresh_token if isinstance(refresh_token, str) else None


class SessionIdentity(IdentityProvider):
    """The console's principal: an admin's session, as the database stands now (never the cookie's word)."""

    def __init__(self, request: Request[Any, Any, Any], principals: PrincipalReader, clock: Clock) -> None:
        self._request = request
        self._principals = principals
        self._clock = clock
        self._principal: Principal | None = None

    async def current(self) -> Principal:
        if self._principal is None:
            session = self._request.session
            if not session.get(_USER_ID):
                raise Unauthenticated("Sign in to use the console.")
            standing = await self._principals.standing(UUID(session[_USER_ID]), None, self._clock.now())
            if standing is None:
                raise InvalidToken("Your session has ended; sign in again.")
            principal = standing.admit(datetime.fromisoformat(session[_ISSUED_AT]))
            if not principal.is_admin:
                raise NotAnAdmin
            self._principal = principal
        return self._principal


async def require_console_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Every console page but sign-in: an admin's live session (sign-in page otherwise, 403 for a non-admin)."""
    if handler.opt.get("public"):
        return
    await (await connection.state.dishka_container.get(IdentityProvider)).current()
