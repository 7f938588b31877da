from application.ports.billing import GenerationBilling
from application.ports.metrics import GenerationMetrics

REAP_BATCH = 100


class ReapExpiredGenerations:
    """Settle generations whose instance died mid-stream (lease expired): `failed`, charged for the input and
    the checkpointed output tokens. Every instance runs it; row locks keep each generation to one reaper."""

    def __init__(self, billing: GenerationBilling, metrics: GenerationMetrics) -> None:
        self._billing = billing
        self._metrics = metrics

    async def __call__(self) -> int:
        total = 0
        while (reaped := await self._billing.reap(REAP_BATCH)) > 0:
            total += reaped
            if reaped < REAP_BATCH:
                break
        if total:
            self._metrics.reaped(total)
        return total
