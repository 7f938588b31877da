"""The dashboard: what the gateway is doing now, and what it did over the last 30 days."""

from typing import Any

from litestar import get
from litestar.response import Template
from litestar_htmx import HTMXRequest

from entrypoints.console.rendering import page


@get("/")
async def dashboard(request: HTMXRequest) -> Template:
    return page(request, "pages/dashboard.html")


handlers: list[Any] = [dashboard]
