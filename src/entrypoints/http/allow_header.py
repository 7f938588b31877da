from litestar.routes import HTTPRoute
from litestar.types import Message, Scope


async def honest_allow_header(message: Message, scope: Scope) -> None:
    """Automatic OPTIONS answers list every method of their path (Litestar keeps a stale list when several
    handlers share a path: the OPTIONS handler of the first route survives the merge)."""
    if scope.get("method") != "OPTIONS" or message["type"] != "http.response.start" or message["status"] != 204:
        return
    template = scope.get("path_template", "")
    methods = sorted(
        {
            method
            for route in scope["litestar_app"].routes
            if isinstance(route, HTTPRoute) and template in {route.path, route.path_format}
            for method in route.methods
        }
    )
    if not methods:
        return
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
    message["headers"] = [*headers, (b"allow", ", ".join(methods).encode())]
