"""A generation run on fakes of its ports: billing that records what it is told, the system clock and ids."""

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import datetime
from uuid import UUID, uuid4

from adapters.llm.token_counter import ApproximateTokenCounter
from adapters.system_clock import SystemClock, UuidGenerator
from application.generations.run import Delta, GenerationPolicy, GenerationRun
from application.ports.billing import Abandoned, GenerationBilling, GenerationStart, Settlement
from application.ports.llm import StreamEvent, TokenCounter
from application.ports.metrics import NO_PROBE, GenerationProbe
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.pricing import Pricing

MODEL = CatalogModel("m", "fake", "fake-m", "", Pricing(1, Credits(1000), Credits(2000)), 100, True)


class RecordingBilling(GenerationBilling):
    def __init__(
        self, *, already_settled: bool = False, failing_settlements: int = 0, reaped_batches: Sequence[int] = ()
    ) -> None:
        self.already_settled = already_settled
        self.failing_settlements = failing_settlements
        self.reaped_batches = list(reaped_batches)
        self.checkpoints: list[int] = []
        self.settlements: list[Settlement] = []

    async def start(self, start: GenerationStart) -> Credits:
        raise NotImplementedError

    async def checkpoint(self, generation_id: UUID, output_tokens: int, lease_expires_at: datetime) -> None:
        self.checkpoints.append(output_tokens)

    async def settle(self, settlement: Settlement) -> Credits | None:
        if self.failing_settlements:
            self.failing_settlements -= 1
            raise ConnectionError("the database is gone")
        self.settlements.append(settlement)
        return None if self.already_settled else Credits.whole(1)

    async def reap(self, now: datetime, limit: int, verdict: Callable[[Abandoned], Settlement]) -> int:
        return self.reaped_batches.pop(0) if self.reaped_batches else 0


def generation_run(
    events: AsyncGenerator[StreamEvent],
    billing: RecordingBilling,
    *,
    probe: GenerationProbe = NO_PROBE,
    max_tokens: int = 10,
    counter: TokenCounter | None = None,
    policy: GenerationPolicy | None = None,
    model: CatalogModel = MODEL,
) -> GenerationRun:
    return GenerationRun(
        generation_id=uuid4(),
        created_at=SystemClock().now(),
        max_tokens=max_tokens,
        api_key=None,
        model=model,
        events=events,
        counter=counter or ApproximateTokenCounter(),
        input_tokens=7,
        billing=billing,
        clock=SystemClock(),
        ids=UuidGenerator(),
        policy=policy or GenerationPolicy(),
        probe=probe,
    )


async def deltas_of(run: GenerationRun) -> AsyncIterator[str]:
    async for event in run:
        if isinstance(event, Delta):
            yield event.text
