"""One suite over every RateLimiter (memory and Redis), plus what each adds: bounded memory, Redis outages."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.rate_limit.memory import MemoryRateLimiter
from adapters.rate_limit.redis_store import RedisRateLimiter, redis_client
from application.limits.quota import refusal, window_end
from application.ports.rate_limit import QuotaHit, RateLimiter

START = 1_800_000_000.0  # a window boundary for 60 s windows
REDIS_URL = "redis://127.0.0.1:6379/0"


def rpm(bucket: str, limit: int, cost: int = 1) -> QuotaHit:
    return QuotaHit(bucket, cost, limit, 60)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    async with redis_client(REDIS_URL, 0.25) as client:
        try:
            await client.ping()
        except (OSError, RedisError):
            pytest.skip("no Redis on 127.0.0.1:6379")
        prefix = f"creditgate-test-{uuid.uuid4().hex}:"
        yield RedisRateLimiter(client, prefix)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)


def test_the_window_arithmetic() -> None:
    assert window_end(START, 60) == START + 60
    assert window_end(START + 59.5, 60) == START + 60
    hit = rpm("b", 3)
    assert refusal(3, hit, START) is None  # the third of three
    assert refusal(4, hit, START + 10) == 50
    assert refusal(4, hit, START + 59.9) == 1  # never 0
    check = QuotaHit("b", 0, 10, 60)
    assert refusal(9, check, START) is None
    assert refusal(10, check, START) == 60


async def test_a_bucket_admits_its_limit_per_window(limiter: RateLimiter) -> None:
    bucket = f"user:{uuid.uuid4()}:rpm"
    decisions = [await limiter.hit([rpm(bucket, 3)], START + 10) for _ in range(5)]
    assert decisions == [None, None, None, 50, 50]
    assert await limiter.hit([rpm(bucket, 3)], START + 60) is None  # the next window starts afresh


async def test_buckets_are_independent_and_the_longest_wait_is_reported(limiter: RateLimiter) -> None:
    user, key = f"user:{uuid.uuid4()}:rpm", f"key:{uuid.uuid4()}:rpm"
    assert await limiter.hit([rpm(user, 1)], START) is None
    assert await limiter.hit([rpm(user, 1), rpm(key, 5)], START + 1) == 59
    assert await limiter.hit([rpm(key, 5)], START + 1) is None


async def test_tokens_are_counted_then_checked_at_zero_cost(limiter: RateLimiter) -> None:
    bucket = f"user:{uuid.uuid4()}:tpm"
    check = QuotaHit(bucket, 0, 100, 60)
    assert await limiter.hit([check], START) is None
    await limiter.hit([QuotaHit(bucket, 99, 100, 60)], START)
    assert await limiter.hit([check], START) is None
    await limiter.hit([QuotaHit(bucket, 5, 100, 60)], START)
    assert await limiter.hit([check], START + 30) == 30


async def test_concurrent_hits_admit_exactly_the_limit(limiter: RateLimiter) -> None:
    bucket = f"user:{uuid.uuid4()}:rpm"
    decisions = await asyncio.gather(*(limiter.hit([rpm(bucket, 7)], START) for _ in range(50)))
    assert decisions.count(None) == 7


async def test_memory_windows_stay_bounded() -> None:
    limiter = MemoryRateLimiter(sweep_seconds=60)
    for i in range(10_000):
        limiter.hit_now([rpm(f"user:{i}:rpm", 5)], START + 1)
    assert len(limiter) == 10_000
    limiter.hit_now([rpm("user:late:rpm", 5)], START + 121)
    assert len(limiter) == 1


async def test_redis_keys_live_one_window(limiter: RateLimiter) -> None:
    if not isinstance(limiter, RedisRateLimiter):
        pytest.skip("Redis only")
    bucket = f"user:{uuid.uuid4()}:rpm"
    await limiter.hit([rpm(bucket, 3)], time.time())
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"*{bucket}*")]
    ttls = [await client.ttl(key) for key in keys]
    await client.aclose()
    assert len(keys) == 1
    assert 59 <= ttls[0] <= 61


async def test_a_closed_redis_port_falls_back_to_memory_quickly() -> None:
    async with redis_client("redis://127.0.0.1:1/0", 0.2) as client:
        limiter = RedisRateLimiter(client, "x:")
        bucket = "user:down:rpm"
        started = time.perf_counter()
        decisions = [await limiter.hit([rpm(bucket, 2)], START) for _ in range(4)]
        elapsed = time.perf_counter() - started
    assert decisions == [None, None, 60, 60]
    assert limiter.failures >= 1
    assert elapsed < 1.0
