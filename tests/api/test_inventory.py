"""Z9 (API9 inventory): the OpenAPI document lists exactly the app's routes, each with its security and errors."""

from typing import Any

import msgspec
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from entrypoints.http.guards import RAISED_BY_GUARD
from entrypoints.http.openapi import RAISES
from entrypoints.http.problems import status_for

UNDOCUMENTED_BY_DESIGN = ("/api-docs", "/metrics", "/admin")  # the docs, the scrape, the console's HTML pages
METHODS = {"get", "post", "put", "patch", "delete"}


async def _document(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/api-docs/openapi.json")).json()
    return document


async def test_the_document_lists_exactly_the_app_routes(client: AsyncTestClient[Litestar], app: Litestar) -> None:
    routes = {
        (method.lower(), route.path_format)
        for route in app.routes
        if isinstance(route, HTTPRoute) and not route.path_format.startswith(UNDOCUMENTED_BY_DESIGN)
        for method in route.methods
        if method.lower() in METHODS
    }
    document = await _document(client)
    documented = {(method, path) for path, item in document["paths"].items() for method in item if method in METHODS}
    assert documented == routes


async def test_every_operation_documents_security_and_its_problems(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "security" in operation, (method, path)
            errors = {status for status in operation["responses"] if int(status) >= 400}
            if not path.startswith("/health/"):
                assert errors, (method, path)
            if operation["security"]:
                assert {"401", "429"} <= errors, (method, path)
                assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True
            for status in errors:
                content = operation["responses"][status]["content"]
                media = "application/json" if path.startswith("/v1/") else "application/problem+json"
                if not path.startswith("/health/"):
                    assert media in content, (method, path, status)


async def test_response_schemas_are_closed(client: AsyncTestClient[Litestar]) -> None:
    schemas = (await _document(client))["components"]["schemas"]
    for name in ("UserView", "TokenPair", "GenerationView", "Problem", "CreatedKey", "ModelView", "OpenAIError"):
        assert schemas[name]["additionalProperties"] is False, name


async def test_admin_operations_document_403(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    for path, item in document["paths"].items():
        if path.startswith("/api/v1/admin"):
            for method, operation in item.items():
                assert "403" in operation["responses"], (method, path)


async def test_the_served_document_is_the_apps_openapi_schema(client: AsyncTestClient[Litestar], app: Litestar) -> None:
    served = await _document(client)
    assert served == msgspec.json.decode(msgspec.json.encode(app.openapi_schema.to_schema()))


async def test_each_route_documents_its_security_and_the_errors_it_declares_with_their_status(
    client: AsyncTestClient[Litestar], app: Litestar
) -> None:
    document = await _document(client)
    declared = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if not handler.resolve_include_in_schema() or method == "OPTIONS":
                continue
            operation = document["paths"][route.path_format][method.lower()]
            guarded = any(guard in RAISED_BY_GUARD for guard in handler.resolve_guards())
            security = list(handler.resolve_security())  # what the handler's layers declare, kept as they say it
            assert bool(security) == guarded, (method, route.path)
            assert operation["security"] == security, (method, route.path)
            for error in handler.opt.get(RAISES, ()):
                responses = operation["responses"]
                assert f"`{error.code}`: " in responses[str(status_for(error))]["description"], (route.path, error)
                declared += 1
    assert declared >= 40
    last_admin = document["paths"]["/api/v1/admin/users/{user_id}"]["patch"]["responses"]["409"]
    assert last_admin["description"].startswith("`last_admin`")
    assert document["paths"]["/v1/messages"]["post"]["security"] == [{"BearerAuth": []}, {"ApiKeyAuth": []}]
