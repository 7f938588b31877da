from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from application.ports.security import IdentityProvider, InvalidToken
from domain.api_key import KeyRevoked, SubscriptionInactive
from domain.errors import DomainError, Forbidden, RateLimited, Unauthenticated


async def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Any authenticated principal (401 otherwise)."""
    await (await connection.state.dishka_container.get(IdentityProvider)).current()


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Role `admin` (401 without a valid token, 403 `forbidden` for any other principal, key tokens included)."""
    principal = await (await connection.state.dishka_container.get(IdentityProvider)).current()
    if not principal.is_admin:
        raise Forbidden


_AUTHENTICATED: tuple[type[DomainError], ...] = (
    Unauthenticated,
    InvalidToken,
    KeyRevoked,
    SubscriptionInactive,
    RateLimited,
)
RAISED_BY_GUARD: dict[Guard, tuple[type[DomainError], ...]] = {
    require_user: _AUTHENTICATED,
    require_admin: (*_AUTHENTICATED, Forbidden),
}
"""What resolving the bearer principal can raise (an ended session or a bad token, a revoked or inactive key, the
per-minute limits), and the role check: the errors every route behind the guard may answer."""
