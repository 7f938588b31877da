"""The generation run reports to GenerationMetrics at the right moments: first token once, upstream errors,
one settlement with the billed usage and cost, and exactly one close whatever happens."""

from collections.abc import AsyncGenerator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from adapters.llm.token_counter import ApproximateTokenCounter
from adapters.system_clock import SystemClock, UuidGenerator
from application.generations.run import GenerationPolicy, GenerationRun
from application.ports.billing import GenerationBilling, GenerationStart, Settlement
from application.ports.llm import StreamEvent, TextDelta, UsageReport
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.errors import UpstreamError
from domain.generation import GenerationStatus
from domain.pricing import Pricing, Usage
from tests.support.metrics import RecordingMetrics

MODEL = CatalogModel("m", "fake", "fake-m", "", Pricing(1, Credits(1000), Credits(2000)), 100, True)


class Billing(GenerationBilling):
    def __init__(self, *, already_settled: bool = False) -> None:
        self.already_settled = already_settled
        self.settlements: list[Settlement] = []

    async def start(self, start: GenerationStart, lease: timedelta) -> Credits:
        raise NotImplementedError

    async def checkpoint(self, generation_id: UUID, output_tokens: int, lease: timedelta) -> None:
        pass

    async def settle(self, settlement: Settlement) -> Credits | None:
        self.settlements.append(settlement)
        return None if self.already_settled else Credits.whole(1)

    async def reap(self, limit: int) -> int:
        return 0


async def _answer(*texts: str, usage: UsageReport | None = None, fail: bool = False) -> AsyncGenerator[StreamEvent]:
    for text in texts:
        yield TextDelta(text)
    if fail:
        raise UpstreamError("broke off")
    if usage is not None:
        yield usage


def _run(events: AsyncGenerator[StreamEvent], billing: Billing, metrics: RecordingMetrics) -> GenerationRun:
    return GenerationRun(
        generation_id=uuid4(),
        created_at=SystemClock().now(),
        max_tokens=10,
        api_key=None,
        model=MODEL,
        events=events,
        counter=ApproximateTokenCounter(),
        input_tokens=7,
        billing=billing,
        clock=SystemClock(),
        ids=UuidGenerator(),
        policy=GenerationPolicy(),
        probe=metrics.started(MODEL.provider, MODEL.id),
    )


async def test_a_completed_generation_reports_its_first_token_its_settlement_and_one_close() -> None:
    metrics = RecordingMetrics()
    run = _run(_answer("a", "b", usage=UsageReport(5, 3)), Billing(), metrics)
    await run.open()
    await run.complete()
    await run.close()
    cost = MODEL.pricing.cost(Usage(5, 3))
    assert metrics.probes[0].reports == [
        ("first_token",),
        ("settled", GenerationStatus.COMPLETED, Usage(5, 3), cost),
        ("closed",),
    ]


async def test_a_failure_before_the_first_token_reports_the_error_and_bills_nothing() -> None:
    metrics = RecordingMetrics()
    run = _run(_answer(fail=True), Billing(), metrics)
    with pytest.raises(UpstreamError):
        await run.open()
    assert metrics.probes[0].reports == [
        ("upstream_error", "upstream_error"),
        ("settled", GenerationStatus.FAILED, Usage(0, 0), Credits.zero()),
        ("closed",),
    ]


async def test_a_generation_another_instance_settled_is_closed_but_not_counted_twice() -> None:
    metrics = RecordingMetrics()
    run = _run(_answer("a", usage=UsageReport(5, 1)), Billing(already_settled=True), metrics)
    await run.open()
    await run.complete()
    assert metrics.probes[0].reports == [("first_token",), ("closed",)]
