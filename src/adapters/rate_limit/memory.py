"""Rate-limit windows in this process's memory: the default store (each instance counts on its own)."""

from collections.abc import Sequence

from application.limits.quota import refusal, window_end
from application.ports.rate_limit import QuotaHit, RateLimiter


class MemoryRateLimiter(RateLimiter):
    """O(1) per hit and asyncio-safe (no await between read and write). Memory stays bounded by the buckets
    active in one window: a bucket keeps only its current window, and expired buckets are dropped once per
    `sweep_seconds`."""

    def __init__(self, sweep_seconds: float = 60.0) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._sweep_seconds = sweep_seconds
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._windows)

    async def hit(self, hits: Sequence[QuotaHit], now: float) -> int | None:
        return self.hit_now(hits, now)

    def hit_now(self, hits: Sequence[QuotaHit], now: float) -> int | None:
        if now >= self._next_sweep:
            self._sweep(now)
        retry_after: int | None = None
        for hit in hits:
            key = f"{hit.bucket}:{hit.window_seconds}"
            ends, total = self._windows.get(key, (0.0, 0))
            if now >= ends:
                ends, total = window_end(now, hit.window_seconds), 0
            total += hit.cost
            self._windows[key] = (ends, total)
            wait = refusal(total, hit, now)
            if wait is not None:
                retry_after = max(wait, retry_after or 0)
        return retry_after

    def _sweep(self, now: float) -> None:
        self._windows = {key: window for key, window in self._windows.items() if window[0] > now}
        self._next_sweep = now + self._sweep_seconds
