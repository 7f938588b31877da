"""Rate-limit windows in Redis: shared by every instance. One pipelined round trip per check."""

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.rate_limit.memory import MemoryRateLimiter
from application.limits.quota import refusal
from application.ports.rate_limit import QuotaHit, RateLimiter

log = structlog.get_logger(__name__)


@asynccontextmanager
async def redis_client(url: str, timeout_seconds: float) -> AsyncIterator["Redis"]:
    """One pooled client for the process; a short socket timeout and no retries, so no request waits on it."""
    client = Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        max_connections=200,
    )
    try:
        yield client
    finally:
        await client.aclose()


class RedisRateLimiter(RateLimiter):
    """`INCRBY` + `EXPIRE … NX` per bucket in one pipeline: the counter lives exactly one window (+1 s).

    Redis down (R3) — fail open to the local store: when Redis errors or does not answer within the socket
    timeout, the check is made against this instance's memory windows instead (the limits then hold per
    instance rather than across instances), a warning is logged (at most once per `log_every` seconds) and
    `failures` counts it. For `cooldown` seconds after a failure Redis is not asked at all, so an outage costs
    no latency. Money is not at risk: balances and key credit limits are enforced by PostgreSQL."""

    def __init__(
        self,
        client: "Redis",
        prefix: str,
        fallback: MemoryRateLimiter | None = None,
        cooldown: float = 1.0,
        log_every: float = 10.0,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._fallback = fallback or MemoryRateLimiter()
        self._cooldown = cooldown
        self._log_every = log_every
        self._down_until = 0.0
        self._logged_at = -log_every
        self.failures = 0

    async def hit(self, hits: Sequence[QuotaHit], now: float) -> int | None:
        if not hits:
            return None
        if time.monotonic() < self._down_until:
            return self._fallback.hit_now(hits, now)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for hit in hits:
                    key = f"{self._prefix}{hit.bucket}:{hit.window_seconds}:{int(now // hit.window_seconds)}"
                    pipe.incrby(key, hit.cost)
                    pipe.expire(key, hit.window_seconds + 1, nx=True)
                results = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            self._unavailable(error)
            return self._fallback.hit_now(hits, now)
        retry_after: int | None = None
        for hit, total in zip(hits, results[0::2], strict=True):
            wait = refusal(int(total), hit, now)
            if wait is not None:
                retry_after = max(wait, retry_after or 0)
        return retry_after

    def _unavailable(self, error: BaseException) -> None:
        self.failures += 1
        moment = time.monotonic()
        self._down_until = moment + self._cooldown
        if moment - self._logged_at >= self._log_every:
            self._logged_at = moment
            log.warning(
                "rate_limit_store_unavailable",
                error=type(error).__name__,
                failures=self.failures,
                fallback="per-instance memory windows",
            )
