"""The request's principal, resolved once per request from its `Authorization: Bearer` header, or from its
`x-api-key` header on the routes whose security lists API_KEY_SCHEME (the Anthropic surface, as its SDK sends it):
the document and the headers read cannot disagree."""

from typing import Any

import structlog
from litestar import Request

from application.accounts.authenticate import Authenticate
from application.limits.quota import Quotas
from application.ports.security import IdentityProvider
from domain.user import Principal

_BEARER = "bearer "
API_KEY_SCHEME = "ApiKeyAuth"
API_KEY_HEADER = "x-api-key"


class BearerIdentity(IdentityProvider):
    def __init__(self, request: Request, authenticate: Authenticate, quotas: Quotas) -> None:  # type: ignore[type-arg]  # dishka keys on the bare class
        self._request = request
        self._authenticate = authenticate
        self._quotas = quotas
        self._principal: Principal | None = None

    async def current(self) -> Principal:
        """Resolved once per request; that once also counts the request against the per-minute limits (429)."""
        if self._principal is None:
            principal = await self._authenticate(_presented_token(self._request))
            structlog.contextvars.bind_contextvars(user_id=str(principal.user_id), api_key=principal.api_key)
            await self._quotas.admit_request(principal)
            self._principal = principal
        return self._principal


def _presented_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if header is None and any(API_KEY_SCHEME in scheme for scheme in request.route_handler.resolve_security()):
        return request.headers.get(API_KEY_HEADER, "").strip() or None
    if header is None or header[: len(_BEARER)].lower() != _BEARER:
        return None
    return header[len(_BEARER) :].strip() or None


def client_address(request: Request[Any, Any, Any]) -> str:
    """The peer, or the client a trusted proxy forwarded for: the ASGI server rewrites `client` from
    `X-Forwarded-For` only for peers in TRUSTED_PROXIES, so the header is never read here."""
    return request.client.host if request.client else "unknown"
