from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PurgeCutoffs:
    now: datetime
    """Login nonces and refresh token families past expiry, and the references of expired or revoked keys."""
    windows_before: datetime
    idempotency_before: datetime
    references_before: datetime


class Housekeeping(Protocol):
    @abstractmethod
    async def purge(self, cutoffs: PurgeCutoffs, limit: int) -> int:
        """Delete at most `limit` rows of each kind past its cutoff: login nonces, throttle windows, idempotency
        keys, refresh token families whose every token expired (a consumed token is kept while its family lives,
        for reuse detection), reference texts; return how many rows went."""
