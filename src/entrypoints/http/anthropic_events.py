"""A generation run as Anthropic's Messages events: `message_start`, `ping`, for each content block
`content_block_start`, `content_block_delta`..., `content_block_stop`, then `message_delta` and `message_stop`; or,
once the stream is open, an `error` event, the last. Every event is named by its data's `type`; each data is one of
the msgspec Structs below, which the OpenAPI document describes too (`MESSAGE_EVENTS`)."""

from collections.abc import AsyncIterator
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from application.generations.anthropic_messages import (
    AnthropicMessage,
    MessageUsage,
    StopReason,
    TextBlock,
    ToolUseBlock,
    message_id,
    message_usage,
    stop_reason,
    tool_use_id,
)
from application.generations.run import Delta, Finished, GenerationRun, Started
from application.ports.llm import ToolCallDelta
from domain.errors import DomainError
from entrypoints.http.openapi import ServerSentEvents
from entrypoints.http.problems import status_of

_ENCODE = msgspec.json.Encoder().encode

AnthropicErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
]
_ERROR_TYPES: dict[int, AnthropicErrorType] = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}
BlockIndex = Annotated[int, msgspec.Meta(ge=0)]


class AnthropicErrorCode(msgspec.Struct, frozen=True):
    """This API's stable `code`, beside Anthropic's coarser `type`."""

    error_code: str

    example: ClassVar[dict[str, Any]] = {"error_code": "insufficient_balance"}


class AnthropicErrorDetail(msgspec.Struct, frozen=True):
    type: AnthropicErrorType
    message: str
    details: AnthropicErrorCode

    example: ClassVar[dict[str, Any]] = {
        "type": "billing_error",
        "message": "The balance does not cover this request.",
        "details": AnthropicErrorCode.example,
    }


class AnthropicError(msgspec.Struct, frozen=True, tag="error", tag_field="type"):
    """Anthropic's error shape: every error of `/v1/messages`, and the `error` event that ends a failed stream."""

    error: AnthropicErrorDetail

    example: ClassVar[dict[str, Any]] = {"type": "error", "error": AnthropicErrorDetail.example}


def anthropic_error(status: int, code: str, message: str) -> AnthropicError:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return AnthropicError(AnthropicErrorDetail(kind, message, AnthropicErrorCode(code)))


def _error_event(error: DomainError) -> AnthropicError:
    return anthropic_error(status_of(error), error.code, error.detail)


class OpenedMessage(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag="message", tag_field="type"
):
    """The message as `message_start` opens it: no content, no stop reason yet, the gateway's count of the prompt."""

    id: str
    role: Literal["assistant"]
    model: str
    content: tuple[()]
    stop_reason: None
    stop_sequence: None
    usage: MessageUsage

    example: ClassVar[dict[str, Any]] = AnthropicMessage.example | {
        "content": [],
        "stop_reason": None,
        "usage": MessageUsage.example
        | {"output_tokens": 0, "cache_creation_input_tokens": None, "cache_read_input_tokens": None},
    }


class MessageStart(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="message_start", tag_field="type"):
    message: OpenedMessage

    example: ClassVar[dict[str, Any]] = {"type": "message_start", "message": OpenedMessage.example}


class Ping(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="ping", tag_field="type"):
    example: ClassVar[dict[str, Any]] = {"type": "ping"}


class ContentBlockStart(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="content_block_start", tag_field="type"
):
    """A block opens empty: a text block with no text, a `tool_use` block with no input (it comes as deltas)."""

    index: BlockIndex
    content_block: TextBlock | ToolUseBlock

    example: ClassVar[dict[str, Any]] = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }


class TextDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="text_delta", tag_field="type"):
    text: str

    example: ClassVar[dict[str, Any]] = {"type": "text_delta", "text": "Hold papers together, "}


class InputJsonDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="input_json_delta", tag_field="type"):
    """A fragment of a tool call's input, as JSON text: the fragments of a block, joined, are its input."""

    partial_json: str

    example: ClassVar[dict[str, Any]] = {"type": "input_json_delta", "partial_json": '{"city": '}


class ContentBlockDelta(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="content_block_delta", tag_field="type"
):
    index: BlockIndex
    delta: TextDelta | InputJsonDelta

    example: ClassVar[dict[str, Any]] = {"type": "content_block_delta", "index": 0, "delta": TextDelta.example}


class ContentBlockStop(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="content_block_stop", tag_field="type"
):
    index: BlockIndex

    example: ClassVar[dict[str, Any]] = {"type": "content_block_stop", "index": 0}


class StopDetails(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    stop_reason: StopReason
    stop_sequence: None

    example: ClassVar[dict[str, Any]] = {"stop_reason": "end_turn", "stop_sequence": None}


class MessageDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="message_delta", tag_field="type"):
    """Why the message stopped, and its final usage (the provider's count of the prompt included)."""

    delta: StopDetails
    usage: MessageUsage

    example: ClassVar[dict[str, Any]] = {
        "type": "message_delta",
        "delta": StopDetails.example,
        "usage": MessageUsage.example,
    }


class MessageStop(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="message_stop", tag_field="type"):
    example: ClassVar[dict[str, Any]] = {"type": "message_stop"}


Event = (
    MessageStart
    | Ping
    | ContentBlockStart
    | ContentBlockDelta
    | ContentBlockStop
    | MessageDelta
    | MessageStop
    | AnthropicError
)
_EVENTS: tuple[type[Event], ...] = (
    MessageStart,
    Ping,
    ContentBlockStart,
    ContentBlockDelta,
    ContentBlockStop,
    MessageDelta,
    MessageStop,
    AnthropicError,
)


def _name(event: type[Event]) -> str:
    return str(event.__struct_config__.tag)


def _frame(data: Event) -> bytes:
    return b"event: %b\ndata: %b\n\n" % (_name(type(data)).encode(), _ENCODE(data))


MESSAGE_EVENTS = ServerSentEvents(
    description="One Anthropic Messages event, named by its data's `type`: `message_start`, `ping`, for each "
    "content block `content_block_start`, `content_block_delta`..., `content_block_stop`, then `message_delta` "
    "(the stop reason and the final usage) and `message_stop`; or an `error` event, the last, once the stream is open",
    events={_name(event): (event,) for event in _EVENTS},
    examples=[
        {"event": _name(event), "data": _ENCODE(event.example).decode()}
        for event in (MessageStart, ContentBlockStart, ContentBlockDelta, ContentBlockStop, MessageDelta, MessageStop)
    ],
)

_PING = _frame(Ping())
_MESSAGE_STOP = _frame(MessageStop())
_DELTA_TAIL = b"}}\n\n"


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
            yield _frame(MessageStart(_opened(event)))
            yield _PING
        elif isinstance(event, Finished):
            outcome = event.outcome
            if outcome.error is not None:
                yield _frame(_error_event(outcome.error))
                return
            stopped = MessageDelta(StopDetails(stop_reason(run.started, outcome), None), message_usage(outcome))
            yield blocks.closed() + _frame(stopped) + _MESSAGE_STOP


class _Blocks:
    """The answer's content blocks, numbered as they open: a text block while text comes, a `tool_use` block per
    tool call (a late fragment of a call still names the call's block). A block closes when the next opens, or when
    the answer ends. A block's delta frame is encoded once, up to its string (the last field of its last field):
    each delta splices its string in, one string encode per delta."""

    def __init__(self, started: Started) -> None:
        self._started = started
        self._open: int | None = None
        self._text: bytes | None = None  # the delta head of the open block, when it holds text
        self._calls: dict[int, bytes] = {}  # tool call -> the delta head of its block

    def text(self, text: str) -> bytes:
        opening = b""
        if self._text is None:
            index, opening = self._next(TextBlock(""))
            self._text = _delta_head(index, TextDelta(""))
        return opening + self._text + _ENCODE(text) + _DELTA_TAIL

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        opening = b""
        if (head := self._calls.get(delta.index)) is None:
            block = ToolUseBlock(tool_use_id(self._started, delta.index, delta.id), delta.name or "", {})
            index, opening = self._next(block)
            head = self._calls[delta.index] = _delta_head(index, InputJsonDelta(""))
        return opening + (head + _ENCODE(delta.arguments) + _DELTA_TAIL if delta.arguments else b"")

    def closed(self) -> bytes:
        return b"" if self._open is None else _frame(ContentBlockStop(self._open))

    def _next(self, block: TextBlock | ToolUseBlock) -> tuple[int, bytes]:
        """Close the open block, open `block` after it: its index, and the frames that say so."""
        closing = self.closed()
        index = 0 if self._open is None else self._open + 1
        self._open, self._text = index, None
        return index, closing + _frame(ContentBlockStart(index, block))


def _delta_head(index: int, empty: TextDelta | InputJsonDelta) -> bytes:
    frame = _frame(ContentBlockDelta(index, empty))
    return frame[: -len(b'""' + _DELTA_TAIL)]


def _opened(started: Started) -> OpenedMessage:
    return OpenedMessage(
        id=message_id(started),
        role="assistant",
        model=started.model_id,
        content=(),
        stop_reason=None,
        stop_sequence=None,
        usage=MessageUsage(
            input_tokens=started.input_tokens,
            output_tokens=0,
            cache_creation_input_tokens=None,
            cache_read_input_tokens=None,
        ),
    )
