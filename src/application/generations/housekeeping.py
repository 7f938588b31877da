from datetime import timedelta

from application.ports.clock import Clock
from application.ports.housekeeping import Housekeeping

THROTTLE_RETENTION = timedelta(days=1)
IDEMPOTENCY_RETENTION = timedelta(hours=48)


class PurgeExpiredRecords:
    """Keep bookkeeping tables bounded: nonces once they can no longer be replayed (their timestamp left the
    window), throttle windows after a day, Idempotency-Keys after 48 h (clients may retry for at least 24 h)."""

    def __init__(self, housekeeping: Housekeeping, clock: Clock) -> None:
        self._housekeeping = housekeeping
        self._clock = clock

    async def __call__(self) -> int:
        now = self._clock.now()
        return await self._housekeeping.purge(
            nonces_before=now,
            windows_before=now - THROTTLE_RETENTION,
            idempotency_before=now - IDEMPOTENCY_RETENTION,
        )
