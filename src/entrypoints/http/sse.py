"""Generation runs as Server-Sent Events. The native stream: `start`, `delta`…, then exactly one of `done` or
`error`, every event with an `id:`. Each frame is built as bytes once, from msgspec Structs. Settlement does not
depend on this generator being read to its end: the request's OpenRuns closes the run, which settles itself."""

from collections.abc import AsyncIterator
from itertools import count
from typing import Any, cast
from uuid import UUID

import msgspec
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Message, Receive, Scope, Send

from application.generations.run import Delta, Finished, GenerationRun, Outcome, Started
from application.generations.views import UsageView
from entrypoints.http.request_context import WIRE_SEND

_ENCODE = msgspec.json.Encoder().encode
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StartData(msgspec.Struct, frozen=True):
    id: UUID
    model: str


class DeltaData(msgspec.Struct, frozen=True):
    text: str


class DoneData(msgspec.Struct, frozen=True):
    id: UUID
    usage: UsageView
    cost: str
    balance: str | None


class ErrorData(msgspec.Struct, frozen=True):
    id: UUID
    usage: UsageView
    cost: str
    code: str
    detail: str


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
            yield _frame(next(ids), b"delta", DeltaData(event.text))
        elif isinstance(event, Started):
            yield _frame(next(ids), b"start", StartData(event.generation_id, event.model_id))
        elif isinstance(event, Finished):
            name, data = _final(event.outcome)
            yield _frame(next(ids), name, data)


def _final(outcome: Outcome) -> tuple[bytes, DoneData | ErrorData]:
    usage = UsageView.of(outcome.usage)
    cost = str(outcome.cost)
    if outcome.error is None:
        balance = None if outcome.balance is None else str(outcome.balance)
        return b"done", DoneData(outcome.generation_id, usage, cost, balance)
    return b"error", ErrorData(outcome.generation_id, usage, cost, outcome.error.code, outcome.error.detail)


def _frame(event_id: int, event: bytes, data: msgspec.Struct) -> bytes:
    return b"id: %d\r\nevent: %b\r\ndata: %b\r\n\r\n" % (event_id, event, _ENCODE(data))
