"""A generation is one stream of events — Started, Delta..., Finished — that settles exactly once in its own
cleanup, whatever ends it: completion, an upstream error, the reader leaving, cancellation, a failed settlement."""

import asyncio
from collections.abc import AsyncGenerator

import pytest

from application.generations.open_runs import LiveRuns
from application.generations.run import Delta, Finished, GenerationEvent, Started
from application.ports.llm import StreamEvent, TextDelta, UsageReport
from domain.errors import SettlementDeferred, UpstreamError
from domain.generation import GenerationStatus
from tests.support.fakes import Fakes
from tests.support.generation_runs import generation_run


async def _answer(*texts: str, fail: bool = False, stall: bool = False) -> AsyncGenerator[StreamEvent]:
    for text in texts:
        yield TextDelta(text, tokens=1)
    if stall:
        await asyncio.Event().wait()
    if fail:
        raise UpstreamError("broke off")
    yield UsageReport(7, len(texts))


async def _events(events: AsyncGenerator[StreamEvent], fakes: Fakes) -> list[GenerationEvent]:
    run = await generation_run(events, fakes)
    await run.open()
    return [event async for event in run]


async def test_a_completed_run_is_started_deltas_and_one_finished_settled_once() -> None:
    fakes = Fakes()
    events = await _events(_answer("a", "b"), fakes)
    assert isinstance(events[0], Started)
    assert events[1:3] == [Delta("a"), Delta("b")]
    (finished,) = events[3:]
    assert isinstance(finished, Finished)
    assert (finished.outcome.status, finished.outcome.error, finished.outcome.output) == (
        GenerationStatus.COMPLETED,
        None,
        "ab",
    )
    assert [s.status for s in fakes.billing.settlements] == [GenerationStatus.COMPLETED]


async def test_an_upstream_error_midway_finishes_failed_and_is_billed_what_came() -> None:
    fakes = Fakes()
    events = await _events(_answer("a", fail=True), fakes)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert isinstance(finished.outcome.error, UpstreamError)
    assert [(s.status, s.usage.output_tokens) for s in fakes.billing.settlements] == [(GenerationStatus.FAILED, 1)]


async def test_a_reader_that_leaves_cancels_the_run_and_closing_again_settles_nothing_more() -> None:
    fakes = Fakes()
    run = await generation_run(_answer("a", "b", "c"), fakes)
    await run.open()
    async for event in run:
        if isinstance(event, Delta):
            break
    first = await run.aclose()
    assert await run.aclose() is first
    assert [(s.status, s.usage.output_tokens) for s in fakes.billing.settlements] == [(GenerationStatus.CANCELLED, 1)]


async def test_a_reader_cancelled_while_the_upstream_is_silent_still_settles_once() -> None:
    fakes = Fakes()
    run = await generation_run(_answer("a", stall=True), fakes)
    await run.open()

    async def read() -> None:
        async for _ in run:
            pass

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert [(s.status, s.usage.output_tokens) for s in fakes.billing.settlements] == [(GenerationStatus.CANCELLED, 1)]
    await run.aclose()
    assert len(fakes.billing.settlements) == 1


async def test_a_failed_settlement_finishes_deferred_and_the_next_close_settles_it() -> None:
    fakes = Fakes()
    fakes.billing.failing_settlements = 1
    run = await generation_run(_answer("a", "b"), fakes)
    await run.open()
    events = [event async for event in run]
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert isinstance(finished.outcome.error, SettlementDeferred)
    assert (finished.outcome.status, finished.outcome.usage.output_tokens) == (GenerationStatus.RUNNING, 2)
    assert fakes.billing.settlements == []
    outcome = await run.aclose()
    assert outcome.status is GenerationStatus.COMPLETED
    assert len(fakes.billing.settlements) == 1


async def test_a_run_never_read_is_settled_by_closing_it() -> None:
    fakes = Fakes()
    run = await generation_run(_answer("a", "b"), fakes)
    await run.open()
    outcome = await run.aclose()
    assert outcome.status is GenerationStatus.CANCELLED
    assert [s.usage.output_tokens for s in fakes.billing.settlements] == [1]


async def test_at_shutdown_the_runs_still_open_are_settled_even_while_their_reader_waits_inside() -> None:
    """The server stopped waiting for two streams: one never read, one whose reader is parked in the upstream."""
    fakes = Fakes()
    live = LiveRuns()
    unread, reading = [await generation_run(_answer("a", "b", stall=True), fakes) for _ in range(2)]
    for run in (unread, reading):
        await run.open()
        live.add(run)

    async def read() -> None:
        async for _ in reading:
            pass

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    await live.close_all()
    assert sorted((s.status, s.usage.output_tokens) for s in fakes.billing.settlements) == [
        (GenerationStatus.CANCELLED, 1),
        (GenerationStatus.CANCELLED, 2),
    ]
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert len(fakes.billing.settlements) == 2
