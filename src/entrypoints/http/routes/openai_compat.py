"""`/v1`: the OpenAI-compatible surface, with OpenAI's error shape `{"error": {message, type, code}}`."""

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Request, Response, Router, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from application.generations.openai_chat import (
    ChatCompletion,
    ChatCompletionRequest,
    CreateChatCompletion,
    chat_completion,
    completion_id,
    completion_usage,
    finish_reason,
)
from application.generations.run import Delta, Finished, GenerationRun, Outcome, Started
from entrypoints.http.guards import require_user
from entrypoints.http.openapi import CHAT_COMPLETION_CHUNKS
from entrypoints.http.problems import PROBLEM_CONVERTERS, status_of, to_problem
from entrypoints.http.sse import EventStream

_ENCODE = msgspec.json.Encoder().encode
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
    description=CreateChatCompletion.__doc__,
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
async def chat_completions(
    data: JSONBody[ChatCompletionRequest], use_case: FromDishka[CreateChatCompletion]
) -> ChatCompletion | Any:
    run = await use_case(data)
    if data.stream:
        return EventStream(_chunks(run, include_usage=data.include_usage))
    return chat_completion(run.started, await run.whole_answer())


async def _chunks(run: GenerationRun, *, include_usage: bool) -> AsyncIterator[bytes]:
    """OpenAI's chunks, each delta's payload spliced into bytes built once per stream: one string encode per chunk."""
    head = b""
    first = True
    async for event in run:
        if isinstance(event, Delta):
            role = b'"role":"assistant",' if first else b""
            first = False
            yield b'%b%b"content":%b},"finish_reason":null}]}\r\n\r\n' % (head, role, _ENCODE(event.text))
        elif isinstance(event, Started):
            base = _chunk_base(event)
            head = b"data: " + _ENCODE(base)[:-1] + b',"choices":[{"index":0,"delta":{'
        elif isinstance(event, Finished):
            for payload in _final_chunks(run.started, event.outcome, include_usage=include_usage):
                yield b"data: %b\r\n\r\n" % _ENCODE(payload)
    yield b"data: [DONE]\r\n\r\n"


def _chunk_base(started: Started) -> dict[str, Any]:
    return {
        "id": completion_id(started),
        "object": "chat.completion.chunk",
        "created": int(started.created_at.timestamp()),
        "model": started.model_id,
    }


def _final_chunks(started: Started, outcome: Outcome, *, include_usage: bool) -> list[dict[str, Any]]:
    if outcome.error is not None:
        return [{"error": _error_body(outcome.error.detail, status_of(outcome.error), outcome.error.code)}]
    base = _chunk_base(started)
    chunks = [base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason(started, outcome)}]}]
    if include_usage:
        chunks.append(base | {"choices": [], "usage": msgspec.to_builtins(completion_usage(outcome))})
    return chunks


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
