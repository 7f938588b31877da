"""The served OpenAPI document is the contract: closed response schemas, every error documented.

Litestar writes the operations; this module completes them once per app, keyed by each route's own
metadata rather than by hand on every handler:
- guards: `require_user` and `require_admin` -> 401, 403 (roles; a key whose subscription is inactive) and 429;
- a path parameter -> 404; a body -> 400 (`malformed_json`), 413 and 422; query or header parameters -> 422;
- every operation but liveness touches PostgreSQL -> 503 `service_unavailable` (with `Retry-After`);
- the `/v1` (OpenAI-compatible) surface answers errors as `{"error": {message, type, code}}`, the rest as
  RFC 9457 problems (`application/problem+json`); Litestar's generic 400 is replaced by the real one;
- a handler with `opt={"event_stream": <schema>}` also answers 200 `text/event-stream`, one schema per event;
- response Structs get `additionalProperties: false`; request Structs only when they forbid unknown fields;
- a Struct's `example` (a ClassVar beside its fields: what goes over the wire) becomes its schema's `examples`,
  which Swagger UI's "Try it out" and its response samples show.
"""

import copy
import types
import typing
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from application import examples
from application.generations.openai_chat import ChatCompletion
from application.generations.views import UsageView
from application.patterns import CREDITS, DIGITS
from entrypoints.http.docs_assets import asset_url, page_head
from entrypoints.http.guards import require_admin, require_user
from entrypoints.http.problems import PROBLEM_MEDIA_TYPE, Problem

OPENAI_PREFIX = "/v1/"
CREDENTIAL_ROUTES = frozenset({"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth"})
NO_DATABASE = frozenset({"/health/live"})
SELF_DESCRIBED = frozenset({"/health/ready"})
OPENAI_ERROR = "OpenAIError"

_REF = "#/components/schemas/"
_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "string", "pattern": DIGITS}}

DESCRIPTIONS = {
    400: "`malformed_json`: the body is not valid JSON",
    401: "Missing, invalid or expired token, an inactive user, an ended session (`unauthorized` and friends), or "
    "a key-scoped token of a revoked key (`key_revoked`)",
    403: "`forbidden`: the principal's role may not use this operation; `subscription_inactive`: a key-scoped "
    "token whose key is suspended or expired",
    404: "`not_found`: no such resource, or not yours",
    413: "`payload_too_large`: the body exceeds 1 MiB",
    422: "`validation_error`: the input is invalid; `errors` names each field",
    429: "`too_many_requests`: rate limited; retry after `Retry-After` seconds",
    503: "`service_unavailable`: the database is unavailable or overloaded; retry after `Retry-After`",
}

_OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "title": OPENAI_ERROR,
    "description": "OpenAI's error shape, as the `/v1` surface answers every error",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "additionalProperties": False,
            "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "string"}},
        }
    },
    "examples": [
        {
            "error": {
                "message": "The balance does not cover this request.",
                "type": "insufficient_quota",
                "code": "insufficient_balance",
            }
        }
    ],
}


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _json_data(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


def _closed(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": required | optional,
        "additionalProperties": False,
    }


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"event": {"const": name}, "data": _json_data(data)}}


_STRING = {"type": "string"}
_CREDITS = {"type": "string", "pattern": CREDITS}
_TOKENS = {"type": "integer", "minimum": 0}
_USAGE = _closed(
    dict.fromkeys(
        ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens"), _TOKENS
    )
)
_GENERATION_ID = {"type": "string", "format": "uuid"}

GENERATION_EVENTS: dict[str, Any] = {
    "description": "One Server-Sent Event: `start`, `delta`..., then exactly one of `done` or `error`",
    "type": "object",
    "required": ["event", "data", "id"],
    "properties": {"id": {"type": "string", "pattern": DIGITS}, "event": _STRING, "data": _STRING},
    "oneOf": [
        _event("start", _closed({"id": _GENERATION_ID, "model": _STRING})),
        _event("delta", _closed({"text": _STRING})),
        _event(
            "done",
            _closed(
                {
                    "id": _GENERATION_ID,
                    "usage": _USAGE,
                    "cost": _CREDITS,
                    "balance": {"oneOf": [_CREDITS, {"type": "null"}]},
                }
            ),
        ),
        _event(
            "error",
            _closed({"id": _GENERATION_ID, "usage": _USAGE, "cost": _CREDITS, "code": _STRING, "detail": _STRING}),
        ),
    ],
    "examples": [
        {"id": "1", "event": "start", "data": _json({"id": examples.GENERATION_ID, "model": "dr14"})},
        {"id": "2", "event": "delta", "data": _json({"text": "Hold papers together, "})},
        {
            "id": "3",
            "event": "done",
            "data": _json(
                {"id": examples.GENERATION_ID, "usage": UsageView.example, "cost": "12.8", "balance": "12.2"}
            ),
        },
    ],
}
CHAT_COMPLETION_CHUNKS: dict[str, Any] = {
    "description": "One `chat.completion.chunk` (or an `error`) as `data:`, and finally `data: [DONE]`",
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"const": "message"}},
    "anyOf": [
        {"properties": {"data": {"const": "[DONE]"}}},
        {
            "properties": {
                "data": _json_data(
                    {"type": "object", "anyOf": [{"required": ["object", "choices"]}, {"required": ["error"]}]}
                )
            }
        },
    ],
    "examples": [
        {
            "event": "message",
            "data": _json(
                {
                    "id": ChatCompletion.example["id"],
                    "object": "chat.completion.chunk",
                    "created": ChatCompletion.example["created"],
                    "model": "gemini-flash",
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": "Hold papers"}, "finish_reason": None}
                    ],
                }
            ),
        },
        {"event": "message", "data": "[DONE]"},
    ],
}


class ContractJsonRenderPlugin(JsonRenderPlugin):
    """`/api-docs/openapi.json`, completed by `contract()` once per app."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, contract(request.app, openapi_schema))


class ContractRedocRenderPlugin(RedocRenderPlugin):
    """Redoc embeds the document, so it embeds the completed one."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, contract(request.app, openapi_schema))


class ContractSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI embeds the document too."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, contract(request.app, openapi_schema))


async def honest_allow_header(message: Message, scope: Scope) -> None:
    """Automatic OPTIONS answers list every method of their path (Litestar keeps a stale list when several
    handlers share a path: the OPTIONS handler of the first route survives the merge)."""
    if scope.get("method") != "OPTIONS" or message["type"] != "http.response.start" or message["status"] != 204:
        return
    methods = _methods_by_path(scope["litestar_app"]).get(scope.get("path_template", ""))
    if methods is None:
        return
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
    message["headers"] = [*headers, (b"allow", ", ".join(methods).encode())]


_METHODS: dict[int, dict[str, list[str]]] = {}


def _methods_by_path(app: Litestar) -> dict[str, list[str]]:
    if (methods := _METHODS.get(id(app))) is None:
        methods = {}
        for route in app.routes:
            if isinstance(route, HTTPRoute):
                methods[route.path] = methods[route.path_format] = sorted(route.methods)
        _METHODS.clear()
        _METHODS[id(app)] = methods
    return methods


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at the docs root, Redoc at `/redoc`, the JSON document at `/openapi.json`; every file the pages
    load is the service's own (`docs_assets`)."""
    swagger = ContractSwaggerRenderPlugin(
        path="/",
        js_url=asset_url("swagger-ui-dist/swagger-ui-bundle.js"),
        css_url=asset_url("swagger-ui-dist/swagger-ui.css"),
        standalone_preset_js_url=asset_url("swagger-ui-dist/swagger-ui-standalone-preset.js"),
        favicon=page_head(),
    )
    redoc = ContractRedocRenderPlugin(
        path="/redoc", js_url=asset_url("redoc/bundles/redoc.standalone.js"), google_fonts=False, favicon=page_head()
    )
    return [swagger, redoc, ContractJsonRenderPlugin()]


_CACHE: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def contract(app: Litestar, generated: dict[str, Any]) -> dict[str, Any]:
    cached = _CACHE.get(id(app))
    if cached is not None and cached[0] is generated:
        return cached[1]
    document = complete(app, generated)
    _CACHE.clear()  # one app per process in production; tests build many, keep only the latest
    _CACHE[id(app)] = (generated, document)
    return document


def complete(app: Litestar, generated: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(generated)
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[OPENAI_ERROR] = _OPENAI_ERROR_SCHEMA
    requests: set[type[msgspec.Struct]] = set()
    responses: set[type[msgspec.Struct]] = {Problem}
    for path, method, handler, route in _operations(app):
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            continue
        _document_errors(path, operation, handler, route)
        if stream := handler.opt.get("event_stream"):
            operation["responses"]["200"].setdefault("content", {})["text/event-stream"] = {"schema": stream}
        if (data := handler.parsed_data_field) is not None:
            requests |= _structs(data.annotation)
        responses |= _structs(handler.parsed_fn_signature.return_type.annotation)
        for spec in (handler.responses or {}).values():
            responses |= _structs(spec.data_container)
    _complete_schemas(schemas, requests, responses)
    return document


def _operations(app: Litestar) -> Iterator[tuple[str, str, HTTPRouteHandler, HTTPRoute]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if handler.resolve_include_in_schema() and method != "OPTIONS":
                yield route.path_format or "/", method.lower(), handler, route


def _document_errors(path: str, operation: dict[str, Any], handler: HTTPRouteHandler, route: HTTPRoute) -> None:
    guards = handler.resolve_guards()
    authenticated = require_user in guards or require_admin in guards
    parameters = [p for p in operation.get("parameters", []) if isinstance(p, dict)]
    has_body = handler.parsed_data_field is not None
    statuses: set[int] = set()
    if has_body:
        statuses |= {400, 413, 422}
    if any(p.get("in") in {"query", "header"} for p in parameters):
        statuses.add(422)
    if route.path_parameters:
        statuses |= {404, 422}
    if authenticated:
        statuses |= {401, 403, 429}
    if path in CREDENTIAL_ROUTES:
        statuses.add(429)
    if path not in NO_DATABASE and path not in SELF_DESCRIBED:
        statuses.add(503)
    documented = operation.setdefault("responses", {})
    if path in SELF_DESCRIBED:
        ok = documented["200"]
        documented["503"] = {"description": "Not ready: the database does not answer", "content": ok["content"]}
    if authenticated:
        operation["security"] = [{"BearerAuth": []}]
    elif "security" not in operation:
        operation["security"] = []
    openai = path.startswith(OPENAI_PREFIX)
    for status in sorted(statuses | {int(s) for s in documented if s.isdigit() and int(s) >= 400}):
        existing = documented.get(str(status), {})
        replace_generic = status == 400 and "Validation Exception" in str(existing)
        description = DESCRIPTIONS.get(status, "") if replace_generic else existing.get("description")
        documented[str(status)] = _error_response(status, description or DESCRIPTIONS[status], openai=openai)


def _error_response(status: int, description: str, *, openai: bool) -> dict[str, Any]:
    media_type, name = ("application/json", OPENAI_ERROR) if openai else (PROBLEM_MEDIA_TYPE, "Problem")
    response: dict[str, Any] = {"description": description, "content": {media_type: {"schema": {"$ref": _REF + name}}}}
    if status == 429:
        response["headers"] = {"Retry-After": {**_RETRY_AFTER, "required": True}}
    elif status == 503:
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


def _complete_schemas(
    schemas: dict[str, Any], requests: set[type[msgspec.Struct]], responses: set[type[msgspec.Struct]]
) -> None:
    """Closes the schemas, and adds the example each Struct declares beside its fields (`example` ClassVar)."""
    by_name = {cls.__name__: cls for cls in requests | responses}
    for name, schema in schemas.items():
        cls = by_name.get(name) or next((c for n, c in by_name.items() if name.endswith(f"_{n}")), None)
        if cls is None or not isinstance(schema, dict) or schema.get("type") != "object":
            continue
        forbids = msgspec.inspect.type_info(cls).forbid_unknown_fields  # type: ignore[attr-defined]
        if forbids or cls not in requests:
            schema["additionalProperties"] = False
        if (example := getattr(cls, "example", None)) is not None:
            schema["examples"] = [example]


def _structs(annotation: Any, seen: set[type[msgspec.Struct]] | None = None) -> set[type[msgspec.Struct]]:
    """Every Struct reachable from a type: its fields, unions, containers and `Response[...]` arguments."""
    seen = set() if seen is None else seen
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation in seen:
            return seen
        seen.add(annotation)
        for field in msgspec.structs.fields(annotation):
            _structs(field.type, seen)
        return seen
    for argument in typing.get_args(annotation):
        if isinstance(argument, (type, types.UnionType)) or typing.get_origin(argument) is not None:
            _structs(argument, seen)
    for base in getattr(annotation, "__orig_bases__", ()):
        _structs(base, seen)
    return seen
