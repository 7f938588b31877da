"""Rate limit adapters: where the per-minute windows are counted."""

from collections.abc import AsyncIterator

from dishka import Provider, Scope, provide

from adapters.rate_limit.memory import MemoryRateLimiter
from adapters.rate_limit.redis_store import RedisRateLimiter, redis_client
from application.ports.rate_limit import RateLimiter
from entrypoints.settings import RateLimitSettings


class RateLimitProvider(Provider):
    scope = Scope.APP

    @provide
    async def rate_limiter(self, limits: RateLimitSettings) -> AsyncIterator[RateLimiter]:
        """Memory windows by default; Redis (one pooled client for the process) when REDIS_URL is set."""
        if not limits.redis_url:
            yield MemoryRateLimiter()
            return
        async with redis_client(limits.redis_url, limits.redis_timeout_ms / 1000) as client:
            yield RedisRateLimiter(client, limits.redis_prefix)
