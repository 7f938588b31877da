"""Counting requests and tokens per bucket in fixed time windows, shared by every instance that shares a store."""

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QuotaHit:
    """Add `cost` to `bucket` in the window of `window_seconds` that holds the current instant; `limit` > 0."""

    bucket: str
    cost: int
    limit: int
    window_seconds: int


class RateLimiter(Protocol):
    @abstractmethod
    async def hit(self, hits: Sequence[QuotaHit], now: float) -> int | None:
        """Add every hit to its bucket's current window (atomically per bucket, in one step, no more than one
        network round trip) and decide with `quota.refusal`: the seconds until the latest refused window ends
        (>= 1) when any bucket had already reached its limit before this hit, else None.

        `now` is Unix time in seconds. MUST NOT raise or hang when its store is unavailable: the adapter
        documents what it decides then (see README, "Rate limits")."""
