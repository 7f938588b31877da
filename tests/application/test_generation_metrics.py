"""The generation run reports to GenerationMetrics at the right moments: first token once, upstream errors,
one settlement with the billed usage and cost, and exactly one close whatever happens."""

from collections.abc import AsyncGenerator
from datetime import timedelta

import pytest

from application.generations.reaper import ReapExpiredGenerations
from application.generations.run import GenerationPolicy, GenerationRun
from application.ports.llm import StreamEvent, TextDelta, UsageReport
from domain.credits import Credits
from domain.errors import UpstreamError
from domain.generation import GenerationStatus
from domain.pricing import Usage
from tests.support.fakes import Fakes
from tests.support.fakes.metrics import RecordingMetrics
from tests.support.generation_runs import MODEL, generation_run


async def _answer(*texts: str, usage: UsageReport | None = None, fail: bool = False) -> AsyncGenerator[StreamEvent]:
    for text in texts:
        yield TextDelta(text)
    if fail:
        raise UpstreamError("broke off")
    if usage is not None:
        yield usage


async def _run(events: AsyncGenerator[StreamEvent], fakes: Fakes, metrics: RecordingMetrics) -> GenerationRun:
    return await generation_run(events, fakes, probe=metrics.started(MODEL.provider, MODEL.id))


async def test_a_completed_generation_reports_its_first_token_its_settlement_and_one_close() -> None:
    metrics = RecordingMetrics()
    run = await _run(_answer("a", "b", usage=UsageReport(5, 3)), Fakes(), metrics)
    await run.open()
    await run.outcome()
    await run.aclose()
    cost = MODEL.pricing.cost(Usage(5, 3))
    assert metrics.probes[0].reports == [
        ("first_token",),
        ("settled", GenerationStatus.COMPLETED, Usage(5, 3), cost),
        ("closed",),
    ]


async def test_a_failure_before_the_first_token_reports_the_error_and_bills_nothing() -> None:
    metrics = RecordingMetrics()
    run = await _run(_answer(fail=True), Fakes(), metrics)
    with pytest.raises(UpstreamError):
        await run.open()
    assert metrics.probes[0].reports == [
        ("upstream_error", "upstream_error"),
        ("settled", GenerationStatus.FAILED, Usage(0, 0), Credits.zero()),
        ("closed",),
    ]


async def test_a_generation_another_instance_settled_is_closed_but_not_counted_twice() -> None:
    metrics = RecordingMetrics()
    fakes = Fakes()
    run = await _run(_answer("a", usage=UsageReport(5, 1)), fakes, metrics)
    await run.open()
    fakes.clock.advance(GenerationPolicy().lease + timedelta(seconds=1))
    assert await ReapExpiredGenerations(fakes.billing, RecordingMetrics(), fakes.clock, fakes.ids)() == 1
    await run.outcome()
    assert metrics.probes[0].reports == [("first_token",), ("closed",)]
