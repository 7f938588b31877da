from dataclasses import dataclass
from datetime import timedelta

from application.ports.clock import Clock
from application.ports.housekeeping import Housekeeping, PurgeCutoffs

THROTTLE_RETENTION = timedelta(days=1)
IDEMPOTENCY_RETENTION = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class HousekeepingPolicy:
    reference_retention: timedelta = timedelta(days=30)
    batch: int = 1000
    """Rows per table and statement: each delete stays short, however large the backlog."""


class PurgeExpiredRecords:
    """Keep bookkeeping tables bounded: nonces once they can no longer be replayed (their timestamp left the
    window), throttle windows after a day, Idempotency-Keys after 48 h (clients may retry for at least 24 h),
    refresh token families once expired, references with their key or after their retention."""

    def __init__(self, housekeeping: Housekeeping, clock: Clock, policy: HousekeepingPolicy) -> None:
        self._housekeeping = housekeeping
        self._clock = clock
        self._policy = policy

    async def __call__(self) -> int:
        now = self._clock.now()
        cutoffs = PurgeCutoffs(
            now=now,
            windows_before=now - THROTTLE_RETENTION,
            idempotency_before=now - IDEMPOTENCY_RETENTION,
            references_before=now - self._policy.reference_retention,
        )
        total = 0
        while True:  # batch after batch until a round finds less than one full batch
            purged = await self._housekeeping.purge(cutoffs, self._policy.batch)
            total += purged
            if purged < self._policy.batch:
                return total
