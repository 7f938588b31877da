"""`/v1`: the OpenAI-compatible surface, with OpenAI's error shape `{"error": {message, type, code}}`."""

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Request, Response, Router, post
from litestar.openapi import ResponseSpec
from litestar.response import ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK

from application.generations.openai_chat import (
    ChatCompletion,
    ChatCompletionRequest,
    ChatCompletions,
    completion_id,
    completion_usage,
    finish_reason,
)
from application.generations.run import GenerationRun, Outcome
from domain.errors import SettlementDeferred
from entrypoints.http.guards import require_user
from entrypoints.http.openapi import CHAT_COMPLETION_CHUNKS
from entrypoints.http.problems import PROBLEM_CONVERTERS, status_of, to_problem
from entrypoints.http.sse import EventStream, settle

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@post(
    "/chat/completions",
    status_code=HTTP_200_OK,
    description=ChatCompletions.__doc__,
    responses={
        200: ResponseSpec(
            ChatCompletion,
            description="The completion; with `stream: true`, `text/event-stream` chunks instead",
            generate_examples=False,
        ),
        402: ResponseSpec(None, description="`insufficient_balance`"),
        404: ResponseSpec(None, description="`model_not_found`"),
        502: ResponseSpec(None, description="`upstream_error`"),
    },
    opt={"event_stream": CHAT_COMPLETION_CHUNKS},
)
@inject
async def chat_completions(data: ChatCompletionRequest, use_case: FromDishka[ChatCompletions]) -> ChatCompletion | Any:
    if data.stream:
        run = await use_case.stream(data)
        return EventStream(_chunks(run, include_usage=data.include_usage))
    return await use_case.complete(data)


async def _chunks(run: GenerationRun, *, include_usage: bool) -> AsyncIterator[ServerSentEventMessage]:
    base = {"id": completion_id(run), "object": "chat.completion.chunk", "created": int(run.created_at.timestamp())}
    base["model"] = run.model.id
    first = True
    try:
        async for text in run.deltas():
            delta = {"role": "assistant", "content": text} if first else {"content": text}
            first = False
            yield _data(base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    finally:
        outcome = await settle(run)
    error = outcome if isinstance(outcome, SettlementDeferred) else outcome.error
    if error is not None:
        yield _data({"error": _error_body(error.detail, status_of(error), error.code)})
    elif isinstance(outcome, Outcome):
        choice = {"index": 0, "delta": {}, "finish_reason": finish_reason(run, outcome)}
        yield _data(base | {"choices": [choice]})
        if include_usage:
            yield _data(base | {"choices": [], "usage": msgspec.to_builtins(completion_usage(outcome))})
    yield ServerSentEventMessage(data="[DONE]")


def _data(payload: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(payload).decode())


def _error_body(message: str, status: int, code: str) -> dict[str, Any]:
    return {"message": message, "type": _ERROR_TYPES.get(status, "api_error"), "code": code}


def _openai_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The same decision as the native API's problems, in OpenAI's shape."""
    problem = to_problem(exc)
    code = problem.extra["code"] if isinstance(problem.extra, dict) else "error"
    body = _error_body(problem.detail, problem.status_code, code)
    return Response({"error": body}, status_code=problem.status_code, headers=problem.headers)


def openai_router(*extra_handlers: Any) -> Router:
    return Router(
        "/v1",
        route_handlers=[chat_completions, *extra_handlers],
        guards=[require_user],
        tags=["openai-compatible"],
        security=[{"BearerAuth": []}],
        exception_handlers=dict.fromkeys(PROBLEM_CONVERTERS, _openai_error),
    )
