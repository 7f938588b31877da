"""`/v1/messages`: the Anthropic-compatible surface, with Anthropic's error shape
`{"type": "error", "error": {type, message, details: {error_code}}}`; `error_code` is this API's stable `code`."""

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Request, Response, Router, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from application.generations.anthropic_messages import (
    AnthropicMessage,
    AnthropicMessages,
    CountMessageTokens,
    MessagesPrompt,
    MessagesRequest,
    TokenCount,
    anthropic_message,
)
from domain.catalog import ModelNotFound
from domain.errors import ProviderUnavailable
from entrypoints.http.anthropic_events import MESSAGE_EVENTS, AnthropicError, anthropic_error, message_events
from entrypoints.http.guards import require_user
from entrypoints.http.identity import API_KEY_SCHEME
from entrypoints.http.openapi import ERROR_BODY, ErrorBody, declared
from entrypoints.http.problems import PROBLEM_CONVERTERS, to_problem
from entrypoints.http.routes.generations import GENERATION_ERRORS
from entrypoints.http.sse import EventStream


@post(
    "/messages",
    status_code=HTTP_200_OK,
    description=AnthropicMessages.__doc__,
    responses={
        200: ResponseSpec(
            AnthropicMessage,
            description="The message; with `stream: true`, `text/event-stream` events instead",
            generate_examples=False,
        ),
    },
    opt=declared(*GENERATION_ERRORS, events=MESSAGE_EVENTS),
)
@inject
async def messages(data: JSONBody[MessagesRequest], use_case: FromDishka[AnthropicMessages]) -> AnthropicMessage | Any:
    run = await use_case(data)
    if data.stream:
        return EventStream(message_events(run))
    return anthropic_message(run.started, await run.whole_answer())


@post(
    "/messages/count_tokens",
    status_code=HTTP_200_OK,
    description=CountMessageTokens.__doc__,
    opt=declared(ModelNotFound, ProviderUnavailable),
)
@inject
async def count_tokens(data: JSONBody[MessagesPrompt], use_case: FromDishka[CountMessageTokens]) -> TokenCount:
    return await use_case(data)


def _anthropic_error(_: Request[Any, Any, Any], exc: Exception) -> Response[AnthropicError]:
    """The same decision as the native API's problems, in Anthropic's shape; field errors are named in `message`."""
    problem = to_problem(exc)
    extra = problem.extra if isinstance(problem.extra, dict) else {}
    fields = extra.get("errors") or []
    message = "; ".join(f"{e['field']}: {e['message']}" for e in fields) or problem.detail
    error = anthropic_error(problem.status_code, extra.get("code", "error"), message)
    return Response(error, status_code=problem.status_code, headers=problem.headers)


def anthropic_router() -> Router:
    return Router(
        "/v1",
        route_handlers=[messages, count_tokens],
        guards=[require_user],
        tags=["anthropic-compatible"],
        security=[{"BearerAuth": []}, {API_KEY_SCHEME: []}],
        exception_handlers=dict.fromkeys(PROBLEM_CONVERTERS, _anthropic_error),
        opt={ERROR_BODY: ErrorBody(AnthropicError, "application/json")},
    )
