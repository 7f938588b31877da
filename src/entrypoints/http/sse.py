"""Generation runs as Server-Sent Events: `start`, `delta`…, then exactly one of `done` or `error`; every event
carries an `id:`. Settlement does not depend on this generator running: the request's OpenRuns closes the run."""

from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import msgspec
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.response.base import ASGIResponse

from application.generations.run import GenerationRun, Outcome
from domain.credits import Credits
from domain.errors import SettlementDeferred
from domain.pricing import Usage


class EventStream(ServerSentEvent):
    """An SSE response from a route that also answers JSON: its own media type wins over the route's.

    Its events are encoded here: Litestar's SSE iterator first asks a worker thread for the (empty) prelude of every
    stream, a thread hop on the way to the first byte."""

    def __init__(self, events: AsyncIterator[ServerSentEventMessage], headers: dict[str, str] | None = None) -> None:
        super().__init__(events, headers=headers)
        self.iterator = _encoded(events)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        return super().to_asgi_response(*args, **kwargs | {"media_type": self.media_type})


async def _encoded(events: AsyncIterator[ServerSentEventMessage]) -> AsyncIterator[bytes]:
    async for event in events:
        yield event.encode()


def generation_events(run: GenerationRun) -> EventStream:
    return EventStream(_events(run), headers={"X-Generation-ID": str(run.generation_id)})


async def _events(run: GenerationRun) -> AsyncIterator[ServerSentEventMessage]:
    ids = count(1)
    yield _message(next(ids), "start", {"id": str(run.generation_id), "model": run.model.id})
    try:
        async for text in run.deltas():
            yield _message(next(ids), "delta", {"text": text})
    finally:
        outcome = await settle(run)
    event, data = _final(run, outcome)
    yield _message(next(ids), event, data)


async def settle(run: GenerationRun) -> Outcome | SettlementDeferred:
    """The run's settlement, or why it was deferred: the stream has started, so that becomes its last event."""
    try:
        return await run.close()
    except SettlementDeferred as deferred:
        return deferred


def _final(run: GenerationRun, outcome: Outcome | SettlementDeferred) -> tuple[str, dict[str, Any]]:
    if isinstance(outcome, SettlementDeferred):
        usage, cost = run.relayed()
        return "error", _charge(run, usage, cost) | {"code": outcome.code, "detail": outcome.detail}
    common = _charge(run, outcome.usage, outcome.cost)
    if outcome.error is None:
        return "done", common | {"balance": None if outcome.balance is None else str(outcome.balance)}
    return "error", common | {"code": outcome.error.code, "detail": outcome.error.detail}


def _charge(run: GenerationRun, usage: Usage, cost: Credits) -> dict[str, Any]:
    return {
        "id": str(run.generation_id),
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        "cost": str(cost),
    }


def _message(event_id: int, event: str, data: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(data).decode(), event=event, id=str(event_id))
