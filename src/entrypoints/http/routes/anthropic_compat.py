"""`/v1/messages`: the Anthropic-compatible surface, with Anthropic's error shape
`{"type": "error", "error": {type, message, details: {error_code}}}`; `error_code` is this API's stable `code`."""

from collections.abc import AsyncIterator
from typing import Any

import msgspec
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
    message_id,
    message_usage,
    stop_reason,
    tool_use_id,
)
from application.generations.run import Delta, Finished, GenerationRun, Outcome, Started
from application.ports.llm import ToolCallDelta
from domain.errors import DomainError
from entrypoints.http.guards import require_user
from entrypoints.http.identity import API_KEY_SCHEME
from entrypoints.http.openapi import MESSAGE_EVENTS
from entrypoints.http.problems import PROBLEM_CONVERTERS, status_of, to_problem
from entrypoints.http.sse import EventStream

_ENCODE = msgspec.json.Encoder().encode
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_BLOCK_START = b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,"content_block":%b}\n\n'
_TEXT_BLOCK = b'{"type":"text","text":""}'
_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"text_delta","text":%b}}\n\n'
)
_JSON_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"input_json_delta","partial_json":%b}}\n\n'
)
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


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
        402: ResponseSpec(None, description="`insufficient_balance` or `key_credit_limit` (`billing_error`)"),
        404: ResponseSpec(None, description="`model_not_found` (`not_found_error`)"),
        502: ResponseSpec(None, description="`upstream_error` (`api_error`)"),
    },
    opt={"event_stream": MESSAGE_EVENTS},
)
@inject
async def messages(data: JSONBody[MessagesRequest], use_case: FromDishka[AnthropicMessages]) -> AnthropicMessage | Any:
    if data.stream:
        return EventStream(message_events(await use_case.stream(data)))
    return await use_case.complete(data)


@post(
    "/messages/count_tokens",
    status_code=HTTP_200_OK,
    description=CountMessageTokens.__doc__,
    responses={404: ResponseSpec(None, description="`model_not_found` (`not_found_error`)")},
)
@inject
async def count_tokens(data: JSONBody[MessagesPrompt], use_case: FromDishka[CountMessageTokens]) -> TokenCount:
    return await use_case(data)


async def message_events(run: GenerationRun) -> AsyncIterator[bytes]:
    """Anthropic's events for one run; an error once the stream is open is an `error` event, and the last."""
    blocks = _Blocks(run.started)
    async for event in run:
        if isinstance(event, Delta):
            yield blocks.text(event.text)
        elif isinstance(event, ToolCallDelta):
            if frames := blocks.tool_call(event):
                yield frames
        elif isinstance(event, Started):
            yield _event(b"message_start", {"type": "message_start", "message": _opening(event)})
            yield _PING
        elif isinstance(event, Finished):
            if event.outcome.error is not None:
                yield _event(b"error", _error_body(event.outcome.error))
                return
            yield blocks.closed() + _event(b"message_delta", _closing(run.started, event.outcome)) + _MESSAGE_STOP


class _Blocks:
    """The answer's content blocks, numbered as they open: a text block while text comes, a `tool_use` block per
    tool call (its input streamed as JSON fragments; a late fragment of a call still names the call's block). A
    block closes when the next opens, or when the answer ends. Each delta is its payload spliced into bytes built
    once: one string encode per delta."""

    def __init__(self, started: Started) -> None:
        self._started = started
        self._open: int | None = None
        self._text: int | None = None  # the open block, when it holds text
        self._calls: dict[int, int] = {}  # tool call -> its block

    def text(self, text: str) -> bytes:
        opening = b""
        if self._text is None:
            self._text, opening = self._next(_TEXT_BLOCK)
        return opening + _TEXT_DELTA % (self._text, _ENCODE(text))

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        opening = b""
        if (block := self._calls.get(delta.index)) is None:
            call_id = tool_use_id(self._started, delta.index, delta.id)
            start = {"type": "tool_use", "id": call_id, "name": delta.name or "", "input": {}}
            block, opening = self._next(_ENCODE(start))
            self._calls[delta.index] = block
        return opening + (_JSON_DELTA % (block, _ENCODE(delta.arguments)) if delta.arguments else b"")

    def closed(self) -> bytes:
        return b"" if self._open is None else _BLOCK_STOP % self._open

    def _next(self, block: bytes) -> tuple[int, bytes]:
        """Close the open block, open `block` after it: its index, and the frames that say so."""
        closing = self.closed()
        index = 0 if self._open is None else self._open + 1
        self._open, self._text = index, None
        return index, closing + _BLOCK_START % (index, block)


def _opening(started: Started) -> dict[str, Any]:
    return {
        "id": message_id(started),
        "type": "message",
        "role": "assistant",
        "model": started.model_id,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": started.input_tokens, "output_tokens": 0},
    }


def _closing(started: Started, outcome: Outcome) -> dict[str, Any]:
    """Its usage is the final one, the provider's input count included (message_start had the gateway's)."""
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(started, outcome), "stop_sequence": None},
        "usage": msgspec.to_builtins(message_usage(outcome)),
    }


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: %b\ndata: %b\n\n" % (name, _ENCODE(data))


def _error_body(error: DomainError) -> dict[str, Any]:
    return _error(status_of(error), error.code, error.detail)


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message, "details": {"error_code": code}}}


def _anthropic_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The same decision as the native API's problems, in Anthropic's shape; field errors are named in `message`."""
    problem = to_problem(exc)
    extra = problem.extra if isinstance(problem.extra, dict) else {}
    fields = extra.get("errors") or []
    message = "; ".join(f"{e['field']}: {e['message']}" for e in fields) or problem.detail
    body = _error(problem.status_code, extra.get("code", "error"), message)
    return Response(body, status_code=problem.status_code, headers=problem.headers)


def anthropic_router() -> Router:
    return Router(
        "/v1",
        route_handlers=[messages, count_tokens],
        guards=[require_user],
        tags=["anthropic-compatible"],
        security=[{"BearerAuth": []}, {API_KEY_SCHEME: []}],
        exception_handlers=dict.fromkeys(PROBLEM_CONVERTERS, _anthropic_error),
    )
