"""Transport policy as a pure ASGI layer: HTTPS only in production, HSTS on HTTPS responses (never on plain HTTP,
RFC 6797 §7.2), `nosniff` on every response.

A request is HTTPS when its ASGI scope says so. Behind a proxy that is the ASGI server's decision: `creditgate serve`
lets uvicorn rewrite the scheme from `X-Forwarded-Proto` only for peers in TRUSTED_PROXIES, so a forged header from
anyone else leaves the request plain. The health probes stay reachable over plain HTTP for orchestrators, and
`/metrics` for the networks allowed to scrape it (Prometheus scrapes each replica in plain HTTP on the private
network; a metrics token is never taken over plain HTTP)."""

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from entrypoints.http.metrics import METRICS_PATH, Networks, in_networks

PROBE_PATHS = frozenset({"/health/live", "/health/ready"})
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NOSNIFF = (b"x-content-type-options", b"nosniff")

_HTTPS_HEADERS: tuple[tuple[bytes, bytes], ...] = (HSTS, NOSNIFF)
_PLAIN_HEADERS: tuple[tuple[bytes, bytes], ...] = (NOSNIFF,)
_REFUSAL_BODY = msgspec.json.encode(
    {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "This API is served over HTTPS only.",
        "code": "https_required",
    }
)
_REFUSAL_HEADERS = (
    (b"content-type", b"application/problem+json"),
    (b"content-length", str(len(_REFUSAL_BODY)).encode()),
    NOSNIFF,
)


class TransportSecurity:
    def __init__(self, app: ASGIApp, *, https_only: bool, metrics_networks: Networks) -> None:
        self._app = app
        self._https_only = https_only
        self._metrics_networks = metrics_networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        if scope.get("scheme") == "https":
            extra = _HTTPS_HEADERS
        elif self._https_only and not self._plain_http_allowed(scope):
            await _refuse(send)
            return
        else:
            extra = _PLAIN_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self._app(scope, receive, send_with_headers)

    def _plain_http_allowed(self, scope: HTTPScope) -> bool:
        path = scope["path"]
        if path == METRICS_PATH:
            client = scope.get("client")
            return client is not None and in_networks(client[0], self._metrics_networks)
        return path in PROBE_PATHS


async def _refuse(send: Send) -> None:
    """Fresh messages each time: outer layers append their headers to the message they are given."""
    await send({"type": "http.response.start", "status": 403, "headers": list(_REFUSAL_HEADERS)})
    await send({"type": "http.response.body", "body": _REFUSAL_BODY, "more_body": False})
