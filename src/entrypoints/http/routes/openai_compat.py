"""`/v1`: the OpenAI-compatible surface, with OpenAI's error shape `{"error": {message, type, code}}`."""

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Request, Response, Router, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from application.generations.openai_chat import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionUsage,
    CreateChatCompletion,
    FinishReason,
    chat_completion,
    completion_id,
    completion_usage,
    finish_reason,
)
from application.generations.run import Delta, Finished, GenerationRun, Outcome, Started
from application.ports.llm import ToolCallDelta
from entrypoints.http.guards import require_user
from entrypoints.http.openapi import ERROR_BODY, ErrorBody, ServerSentEvents, declared
from entrypoints.http.problems import PROBLEM_CONVERTERS, status_of, to_problem
from entrypoints.http.routes.generations import GENERATION_ERRORS
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


class OpenAIErrorDetail(msgspec.Struct, frozen=True):
    """As OpenAI writes it: `param` names the first invalid field of a validation error, else null."""

    message: str
    type: str
    code: str
    param: str | None = None

    example: ClassVar[dict[str, Any]] = {
        "message": "The balance does not cover this request.",
        "type": "insufficient_quota",
        "code": "insufficient_balance",
    }


class OpenAIError(msgspec.Struct, frozen=True):
    """OpenAI's error shape, as the `/v1` surface answers every error."""

    error: OpenAIErrorDetail

    example: ClassVar[dict[str, Any]] = {"error": OpenAIErrorDetail.example}


class FunctionChunk(msgspec.Struct, frozen=True, omit_defaults=True):
    arguments: str
    name: str | None = None

    example: ClassVar[dict[str, Any]] = {"name": "get_weather", "arguments": '{"city": '}


class ToolCallChunk(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A piece of a tool call: the first one of a call has its `id`, `type` and `function.name`."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionChunk

    example: ClassVar[dict[str, Any]] = {
        "index": 0,
        "id": "call_0",
        "type": "function",
        "function": FunctionChunk.example,
    }


class ChunkDelta(msgspec.Struct, frozen=True, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallChunk] | None = None

    example: ClassVar[dict[str, Any]] = {"role": "assistant", "content": "Hold papers"}


class ChunkChoice(msgspec.Struct, frozen=True):
    index: int
    delta: ChunkDelta
    finish_reason: FinishReason | None

    example: ClassVar[dict[str, Any]] = {"index": 0, "delta": ChunkDelta.example, "finish_reason": None}


class ChatCompletionChunk(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One `chat.completion.chunk`; the last one, with `stream_options.include_usage`, has no choices but the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None

    example: ClassVar[dict[str, Any]] = {
        "id": ChatCompletion.example["id"],
        "object": "chat.completion.chunk",
        "created": ChatCompletion.example["created"],
        "model": "gemini-flash",
        "choices": [ChunkChoice.example],
    }


CHAT_COMPLETION_CHUNKS = ServerSentEvents(
    description="One `chat.completion.chunk` (or an `error`) as `data:`, and finally `data: [DONE]`",
    events={"message": (ChatCompletionChunk, OpenAIError)},
    last="[DONE]",
    examples=[
        {"event": "message", "data": _ENCODE(ChatCompletionChunk.example).decode()},
        {"event": "message", "data": "[DONE]"},
    ],
)


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
    },
    opt=declared(*GENERATION_ERRORS, events=CHAT_COMPLETION_CHUNKS),
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
        if isinstance(event, Delta | ToolCallDelta):
            role = b'"role":"assistant",' if first else b""
            first = False
            if isinstance(event, Delta):
                delta = b'"content":%b' % _ENCODE(event.text)
            else:
                delta = b'"tool_calls":[%b]' % _ENCODE(_tool_call_chunk(event))
            yield b'%b%b%b},"finish_reason":null}]}\r\n\r\n' % (head, role, delta)
        elif isinstance(event, Started):
            # `choices` is the chunk's last field written (`usage` is omitted): its `[]}` opens the one choice
            head = b"data: " + _ENCODE(_chunk(event, []))[: -len(b"[]}")] + b'[{"index":0,"delta":{'
        elif isinstance(event, Finished):
            for payload in _final_chunks(run.started, event.outcome, include_usage=include_usage):
                yield b"data: %b\r\n\r\n" % _ENCODE(payload)
    yield b"data: [DONE]\r\n\r\n"


def _tool_call_chunk(delta: ToolCallDelta) -> ToolCallChunk:
    """OpenAI's shape: the first piece of a call has its id, type and name, each piece an arguments fragment."""
    return ToolCallChunk(
        index=delta.index,
        id=delta.id,
        type="function" if delta.id is not None else None,
        function=FunctionChunk(name=delta.name, arguments=delta.arguments),
    )


def _chunk(started: Started, choices: list[ChunkChoice], usage: CompletionUsage | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=completion_id(started),
        object="chat.completion.chunk",
        created=int(started.created_at.timestamp()),
        model=started.model_id,
        choices=choices,
        usage=usage,
    )


def _final_chunks(
    started: Started, outcome: Outcome, *, include_usage: bool
) -> list[ChatCompletionChunk | OpenAIError]:
    if outcome.error is not None:
        return [_error(outcome.error.detail, status_of(outcome.error), outcome.error.code)]
    done = ChunkChoice(index=0, delta=ChunkDelta(), finish_reason=finish_reason(started, outcome))
    chunks: list[ChatCompletionChunk | OpenAIError] = [_chunk(started, [done])]
    if include_usage:
        chunks.append(_chunk(started, [], completion_usage(outcome)))
    return chunks


def _error(message: str, status: int, code: str, param: str | None = None) -> OpenAIError:
    kind = _ERROR_TYPES.get(status, "api_error")
    return OpenAIError(OpenAIErrorDetail(message=message, type=kind, code=code, param=param))


def _openai_error(_: Request[Any, Any, Any], exc: Exception) -> Response[OpenAIError]:
    """The same decision as the native API's problems, in OpenAI's shape (`param`: the first invalid field)."""
    problem = to_problem(exc)
    extra = problem.extra if isinstance(problem.extra, dict) else {}
    errors = extra.get("errors")
    error = _error(
        problem.detail, problem.status_code, extra.get("code", "error"), errors[0]["field"] if errors else None
    )
    return Response(error, status_code=problem.status_code, headers=problem.headers)


def openai_router(*extra_handlers: Any) -> Router:
    return Router(
        "/v1",
        route_handlers=[chat_completions, *extra_handlers],
        guards=[require_user],
        tags=["openai-compatible"],
        security=[{"BearerAuth": []}],
        exception_handlers=dict.fromkeys(PROBLEM_CONVERTERS, _openai_error),
        opt={ERROR_BODY: ErrorBody(OpenAIError, "application/json")},
    )
