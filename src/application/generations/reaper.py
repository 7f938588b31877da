from application.ports.billing import Abandoned, GenerationBilling, Settlement
from application.ports.clock import Clock, IdGenerator
from application.ports.metrics import GenerationMetrics
from domain.generation import GenerationStatus, UsageSource

REAP_BATCH = 100
INTERRUPTED = "interrupted"


class ReapExpiredGenerations:
    """Settle generations whose instance died mid-stream (lease expired): `failed`, charged for the input and
    the checkpointed output tokens. Every instance runs it; row locks keep each generation to one reaper."""

    def __init__(self, billing: GenerationBilling, metrics: GenerationMetrics, clock: Clock, ids: IdGenerator) -> None:
        self._billing = billing
        self._metrics = metrics
        self._clock = clock
        self._ids = ids

    async def __call__(self) -> int:
        total = 0
        while (reaped := await self._billing.reap(self._clock.now(), REAP_BATCH, self._verdict)) > 0:
            total += reaped
            if reaped < REAP_BATCH:
                break
        if total:
            self._metrics.reaped(total)
        return total

    def _verdict(self, abandoned: Abandoned) -> Settlement:
        return Settlement(
            generation_id=abandoned.generation_id,
            entry_id=self._ids.new_id(),
            status=GenerationStatus.FAILED,
            usage=abandoned.usage,
            usage_source=UsageSource.COUNTER,
            cost=abandoned.pricing.cost(abandoned.usage),
            output=None,
            finished_at=self._clock.now(),
            error_code=INTERRUPTED,
        )
