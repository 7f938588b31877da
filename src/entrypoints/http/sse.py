"""Generation runs as Server-Sent Events. The native stream: `start`, `delta`…, then exactly one of `done` or
`error`, every event with an `id:`. Each frame is built as bytes once, from the msgspec Structs the OpenAPI document
describes too (`GENERATION_EVENTS`). Settlement does not depend on this generator being read to its end: the
request's OpenRuns closes the run, which settles itself."""

from collections.abc import AsyncIterator
from itertools import count
from typing import Any, ClassVar, cast
from uuid import UUID

import msgspec
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Message, Receive, Scope, Send

from application import examples
from application.generations.run import Delta, Finished, GenerationRun, Outcome, Started
from application.generations.views import UsageView
from application.views import CreditsText
from entrypoints.http.openapi import ServerSentEvents
from entrypoints.http.request_context import WIRE_SEND

_ENCODE = msgspec.json.Encoder().encode
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StartData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: UUID
    model: str

    event: ClassVar[bytes] = b"start"
    example: ClassVar[dict[str, Any]] = {"id": examples.GENERATION_ID, "model": "dr14"}


class DeltaData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: str

    event: ClassVar[bytes] = b"delta"
    example: ClassVar[dict[str, Any]] = {"text": "Hold papers together, "}


class DoneData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: UUID
    usage: UsageView
    cost: CreditsText
    balance: CreditsText | None

    event: ClassVar[bytes] = b"done"
    example: ClassVar[dict[str, Any]] = {
        "id": examples.GENERATION_ID,
        "usage": UsageView.example,
        "cost": "12.8",
        "balance": "12.2",
    }


class ErrorData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: UUID
    usage: UsageView
    cost: CreditsText
    code: str
    detail: str

    event: ClassVar[bytes] = b"error"
    example: ClassVar[dict[str, Any]] = {
        "id": examples.GENERATION_ID,
        "usage": UsageView.example,
        "cost": "0.4",
        "code": "upstream_error",
        "detail": "The model provider failed to produce an answer.",
    }


Payload = StartData | DeltaData | DoneData | ErrorData
_PAYLOADS: tuple[type[Payload], ...] = (StartData, DeltaData, DoneData, ErrorData)
GENERATION_EVENTS = ServerSentEvents(
    description="One Server-Sent Event: `start`, `delta`..., then exactly one of `done` or `error`",
    events={payload.event.decode(): (payload,) for payload in _PAYLOADS},
    numbered=True,
    examples=[
        {"id": str(number), "event": payload.event.decode(), "data": _ENCODE(payload.example).decode()}
        for number, payload in enumerate(_PAYLOADS[:3], 1)
    ],
)


class EventStream(Stream):
    """`text/event-stream` from a route that also answers JSON (its own media type wins over the route's)."""

    def __init__(self, frames: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=_STREAM_HEADERS | (headers or {}))

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs | {"media_type": self.media_type})
        response.__class__ = _WireStreamingResponse  # the same slots: only `__call__` differs
        return response


class _WireStreamingResponse(ASGIStreamingResponse):
    """Litestar's streaming response whose body chunks go straight to the server's `send`. The layers between
    (before-send hooks, Prometheus, Litestar's exception middleware, transport headers, the request context) act
    on a response's start and its end, which still pass through them; the chunks in between skip five wrappers."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wire: Send | None = cast("dict[str, Any]", scope).get(WIRE_SEND)
        await super().__call__(scope, receive, send if wire is None else _chunks_to(wire, send))


def _chunks_to(wire: Send, layered: Send) -> Send:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("more_body"):
            await wire(message)
        else:
            await layered(message)

    return send


def generation_events(run: GenerationRun) -> EventStream:
    return EventStream(_frames(run), headers={"X-Generation-ID": str(run.generation_id)})


async def _frames(run: GenerationRun) -> AsyncIterator[bytes]:
    ids = count(1)
    async for event in run:
        if isinstance(event, Delta):
            yield _frame(next(ids), DeltaData(event.text))
        elif isinstance(event, Started):
            yield _frame(next(ids), StartData(event.generation_id, event.model_id))
        elif isinstance(event, Finished):
            yield _frame(next(ids), _final(event.outcome))


def _final(outcome: Outcome) -> DoneData | ErrorData:
    usage = UsageView.of(outcome.usage)
    cost = str(outcome.cost)
    if outcome.error is None:
        balance = None if outcome.balance is None else str(outcome.balance)
        return DoneData(outcome.generation_id, usage, cost, balance)
    return ErrorData(outcome.generation_id, usage, cost, outcome.error.code, outcome.error.detail)


def _frame(event_id: int, data: Payload) -> bytes:
    return b"id: %d\r\nevent: %b\r\ndata: %b\r\n\r\n" % (event_id, data.event, _ENCODE(data))
