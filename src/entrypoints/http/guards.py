from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from application.ports.security import IdentityProvider
from domain.errors import Forbidden


async def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Any authenticated principal (401 otherwise)."""
    await (await connection.state.dishka_container.get(IdentityProvider)).current()


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Role `admin` (401 without a valid token, 403 `forbidden` for any other principal, key tokens included)."""
    principal = await (await connection.state.dishka_container.get(IdentityProvider)).current()
    if not principal.is_admin:
        raise Forbidden
