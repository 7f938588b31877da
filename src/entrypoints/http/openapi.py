"""The OpenAPI document is `app.openapi_schema`, served as it is at `/api-docs/openapi.json`.

Each route declares the domain errors it raises (`opt=declared(NotFound, ...)`); each one's status is the one
`problems.STATUS_BY_ERROR` gives it at run time, its description its `code` and `default_detail`. Once, when the
app is created, `document(app)` turns that declaration and the handler's own metadata into `ResponseSpec`s:
- its guards -> what they raise (`guards.RAISED_BY_GUARD`: 401, 403, 429);
- a body -> 400 `malformed_json`, 413 (the handler's body limit), 422; any parameter -> 400 and 422;
- a path parameter -> 404 `not_found` unless a declared error already answers 404;
- a handler injected from the container (it reaches PostgreSQL) -> 503 `service_unavailable`;
- every error answers in the error body of its layer (`opt[ERROR_BODY]`: RFC 9457 problems unless a router
  says otherwise, as `/v1` does with OpenAI's shape and `/v1/messages` with Anthropic's). Responses the handler
  itself declares are kept.
Then it adds what a `ResponseSpec` cannot say to the built document: `Retry-After` headers, an explicit empty
`security` on public operations (the others keep what their layers declare: a bearer token, or on `/v1/messages`
a bearer token or `x-api-key`), and the `text/event-stream` answer of a streaming route (`opt[EVENTS]`).
Struct schemas are closed and carry their `example` ClassVar through `StructSchemas`, a schema plugin.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import msgspec
from dishka.integrations.base import is_dishka_injected
from litestar import Litestar
from litestar.constants import RESERVED_KWARGS
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.plugins import OpenAPISchemaPlugin
from litestar.routes import HTTPRoute
from litestar.typing import FieldDefinition

from application.patterns import DIGITS
from domain.errors import DomainError, NotFound, StorageUnavailable
from entrypoints.http.docs_assets import asset_url, page_head
from entrypoints.http.guards import RAISED_BY_GUARD
from entrypoints.http.problems import (
    CODE_BY_STATUS,
    INVALID_REQUEST,
    MALFORMED_JSON,
    PROBLEM_MEDIA_TYPE,
    Problem,
    status_for,
)

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

RAISES = "raises"
EVENTS = "events"
ERROR_BODY = "error_body"

_REF = "#/components/schemas/"
_RETRY_AFTER_REQUIRED = {429: True, 503: False}


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """How a layer writes its errors: one Struct, one media type."""

    container: type[msgspec.Struct]
    media_type: str


PROBLEM_BODY = ErrorBody(Problem, PROBLEM_MEDIA_TYPE)


@dataclass(frozen=True, slots=True)
class ServerSentEvents:
    """A route's `text/event-stream` answer. `events` names each event and the Structs its `data` may be (as JSON);
    an unnamed event is `message`. `last` is a final `data:` that is not JSON (`[DONE]`); `numbered` events carry
    an `id:`."""

    description: str
    events: Mapping[str, tuple[type[msgspec.Struct], ...]]
    examples: list[dict[str, str]]
    last: str | None = None
    numbered: bool = False
    structs: tuple[type[msgspec.Struct], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "structs", tuple(s for structs in self.events.values() for s in structs))

    def schema(self) -> Schema:
        variants = [
            Schema(properties={"event": Schema(const=name), "data": _json_data(structs)})
            for name, structs in self.events.items()
        ]
        if self.last is not None:
            variants.append(Schema(properties={"event": Schema(const="message"), "data": Schema(const=self.last)}))
        properties: dict[str, Schema | Reference] = {
            "event": Schema(type=OpenAPIType.STRING),
            "data": Schema(type=OpenAPIType.STRING),
        }
        if self.numbered:
            properties["id"] = Schema(type=OpenAPIType.STRING, pattern=DIGITS)
        return Schema(
            description=self.description,
            type=OpenAPIType.OBJECT,
            required=["event", "data", *(["id"] if self.numbered else [])],
            properties=properties,
            any_of=variants,
            examples=self.examples,
        )


def _json_data(structs: tuple[type[msgspec.Struct], ...]) -> Schema:
    refs = [Reference(ref=_REF + struct.__name__) for struct in structs]
    return Schema(
        type=OpenAPIType.STRING,
        content_media_type="application/json",
        content_schema=refs[0] if len(refs) == 1 else Schema(any_of=refs),
    )


def declared(*errors: type[DomainError], events: ServerSentEvents | None = None) -> dict[str, Any]:
    """A route's `opt`: the domain errors it raises, and its event stream when it has one."""
    return {RAISES: errors} | ({EVENTS: events} if events is not None else {})


class StructSchemas(OpenAPISchemaPlugin):
    """Litestar's schema of a Struct, closed and with its example: a response Struct's schema always forbids other
    properties (the server writes no other), a request Struct's only when it forbids unknown fields (else the
    server accepts them). `example` (a ClassVar beside its fields: what goes over the wire) becomes `examples`."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return not field_definition.is_union and field_definition.is_subclass_of(msgspec.Struct)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: "SchemaCreator") -> Schema:
        litestar = next(
            plugin
            for plugin in schema_creator.plugins
            if plugin is not self and schema_creator.plugin_supports_field(plugin, field_definition)
        )
        schema = litestar.to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        info = cast("msgspec.inspect.StructType", msgspec.inspect.type_info(struct))
        if info.forbid_unknown_fields or not schema_creator.prefer_alias:  # request bodies prefer aliases
            schema.additional_properties = False
        if (example := getattr(struct, "example", None)) is not None:
            schema.examples = [_as_written(example)]
        return schema


def _as_written(example: Any) -> msgspec.Raw:
    """An example as JSON: Litestar's writer of the document drops every null from the dicts it walks."""
    return msgspec.Raw(msgspec.json.encode(example))


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at the docs root, Redoc at `/redoc`, the JSON document at `/openapi.json`; every file the pages
    load is the service's own (`docs_assets`)."""
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=asset_url("swagger-ui-dist/swagger-ui-bundle.js"),
        css_url=asset_url("swagger-ui-dist/swagger-ui.css"),
        standalone_preset_js_url=asset_url("swagger-ui-dist/swagger-ui-standalone-preset.js"),
        favicon=page_head(),
    )
    redoc = RedocRenderPlugin(
        path="/redoc", js_url=asset_url("redoc/bundles/redoc.standalone.js"), google_fonts=False, favicon=page_head()
    )
    return [swagger, redoc, JsonRenderPlugin()]


@dataclass(frozen=True, slots=True)
class _Answer:
    code: str
    detail: str


def document(app: Litestar) -> OpenAPI:
    """Declare each handler's error responses, then complete the document Litestar builds from them, once."""
    operations = list(_operations(app))
    derived: dict[HTTPRouteHandler, set[int]] = {}
    for _, _, handler, route in operations:
        body: ErrorBody = handler.opt.get(ERROR_BODY, PROBLEM_BODY)
        specs = {
            status: _error_spec(answers, body)
            for status, answers in _answers(handler, route).items()
            if status not in (handler.responses or {})
        }
        derived[handler] = set(specs)
        handler.responses = {**specs, **(handler.responses or {})}
    openapi = app.openapi_schema
    schemas = openapi.components.schemas = openapi.components.schemas or {}
    for path, method, handler, _ in operations:
        operation: Operation = getattr(openapi.paths[path], method)  # type: ignore[index]
        _complete(operation, handler, derived[handler], schemas)
    return openapi


def _operations(app: Litestar) -> Iterator[tuple[str, str, HTTPRouteHandler, HTTPRoute]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if handler.resolve_include_in_schema() and method != "OPTIONS":
                yield route.path_format or "/", method.lower(), handler, route


def _answers(handler: HTTPRouteHandler, route: HTTPRoute) -> dict[int, list[_Answer]]:
    errors: list[type[DomainError]] = [*handler.opt.get(RAISES, ())]
    for guard in handler.resolve_guards():
        errors += RAISED_BY_GUARD.get(guard, ())
    answers: dict[int, list[_Answer]] = {}
    if handler.parsed_data_field is not None:
        limit = handler.resolve_request_max_body_size()
        answers[400] = [_Answer(*MALFORMED_JSON)]
        answers[413] = [_Answer(CODE_BY_STATUS[413], f"The request body exceeds {limit} bytes.")]
    if handler.parsed_data_field is not None or _has_parameters(handler, route):
        answers.setdefault(400, [_Answer(CODE_BY_STATUS[400], "The request is malformed.")])
        answers[422] = [_Answer(*INVALID_REQUEST)]
    if route.path_parameters and not any(status_for(error) == 404 for error in errors):
        errors.append(NotFound)
    if is_dishka_injected(handler.fn):
        errors.append(StorageUnavailable)
    for error in errors:
        answer = _Answer(error.code, error.default_detail)
        listed = answers.setdefault(status_for(error), [])
        if answer.code not in {known.code for known in listed}:
            listed.append(answer)
    return dict(sorted(answers.items()))


def _has_parameters(handler: HTTPRouteHandler, route: HTTPRoute) -> bool:
    """Path, query or header parameters: what Litestar validates before the handler runs."""
    dependencies = handler.resolve_dependencies()
    return bool(route.path_parameters) or any(
        name not in RESERVED_KWARGS and name not in dependencies for name in handler.parsed_fn_signature.parameters
    )


def _error_spec(answers: list[_Answer], body: ErrorBody) -> ResponseSpec:
    return ResponseSpec(
        data_container=body.container,
        description="; ".join(f"`{answer.code}`: {answer.detail}" for answer in answers),
        media_type=body.media_type,
        generate_examples=False,
    )


def _complete(operation: Operation, handler: HTTPRouteHandler, derived: set[int], schemas: dict[str, Any]) -> None:
    if operation.security is None:
        operation.security = []  # public, said explicitly
    responses = operation.responses or {}
    for status in derived & set(_RETRY_AFTER_REQUIRED):
        response = cast("OpenAPIResponse", responses[str(status)])
        response.headers = {
            "Retry-After": OpenAPIHeader(
                description="Seconds to wait before retrying",
                required=_RETRY_AFTER_REQUIRED[status],
                schema=Schema(type=OpenAPIType.STRING, pattern=DIGITS),
            )
        }
    events: ServerSentEvents | None = handler.opt.get(EVENTS)
    if events is not None:
        ok = cast("OpenAPIResponse", responses["200"])
        ok.content = {**(ok.content or {}), "text/event-stream": OpenAPIMediaType(schema=events.schema())}
        _add_components(schemas, events.structs)


def _add_components(schemas: dict[str, Any], structs: tuple[type[msgspec.Struct], ...]) -> None:
    """The event payloads' schemas, as msgspec writes them (Litestar only sees what handlers return), each with
    its example; a Struct Litestar already wrote keeps Litestar's schema."""
    _, components = msgspec.json.schema_components(structs, ref_template=_REF + "{name}")
    by_name = {struct.__name__: struct for struct in _reachable(msgspec.inspect.multi_type_info(structs))}
    for name, schema in components.items():
        if name not in schemas:
            if (example := getattr(by_name[name], "example", None)) is not None:
                schema["examples"] = [_as_written(example)]
            schemas[name] = schema


def _reachable(types: Iterable[msgspec.inspect.Type]) -> Iterator[type[msgspec.Struct]]:
    for type_ in types:
        if isinstance(type_, msgspec.inspect.StructType):
            yield type_.cls
            yield from _reachable(field_.type for field_ in type_.fields)
        inner = [getattr(type_, name, None) for name in ("type", "item_type", "key_type", "value_type")]
        yield from _reachable(
            [*(t for t in inner if isinstance(t, msgspec.inspect.Type)), *getattr(type_, "types", ())]
        )
