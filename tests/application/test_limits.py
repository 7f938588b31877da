"""Requests and tokens per minute, per user and per key, on a frozen clock."""

from datetime import timedelta
from uuid import UUID

import pytest

from adapters.rate_limit.memory import MemoryRateLimiter
from application.limits.quota import Quotas, RateLimitPolicy
from domain.errors import RateLimited
from domain.user import Principal, Role
from tests.support.fakes.clock import FrozenClock

ADA = Principal(UUID(int=1), Role.CLIENT)
ADAS_KEY = Principal(UUID(int=1), Role.CLIENT, api_key="ak_1")


def _quotas(policy: RateLimitPolicy) -> tuple[Quotas, FrozenClock]:
    clock = FrozenClock()  # 09:30:00, the start of a window
    return Quotas(MemoryRateLimiter(), policy, clock), clock


async def test_the_requests_of_a_minute_are_counted_per_user_and_retry_after_ends_the_window() -> None:
    quotas, clock = _quotas(RateLimitPolicy(user_rpm=2))
    await quotas.admit_request(ADA)
    await quotas.admit_request(ADAS_KEY)  # a key's requests count for its owner too
    clock.advance(timedelta(seconds=20))
    with pytest.raises(RateLimited) as refused:
        await quotas.admit_request(ADA)
    assert refused.value.retry_after_seconds == 40
    clock.advance(timedelta(seconds=40))
    await quotas.admit_request(ADA)


async def test_a_key_has_its_own_request_limit() -> None:
    quotas, _ = _quotas(RateLimitPolicy(key_rpm=1))
    await quotas.admit_request(ADAS_KEY)
    with pytest.raises(RateLimited):
        await quotas.admit_request(ADAS_KEY)
    await quotas.admit_request(ADA)  # without the key, no key limit


async def test_generations_wait_once_the_tokens_of_the_minute_are_used() -> None:
    quotas, clock = _quotas(RateLimitPolicy(user_tpm=100, key_tpm=10))
    await quotas.admit_generation(ADAS_KEY)
    await quotas.record_tokens(ADAS_KEY, 10)
    with pytest.raises(RateLimited):
        await quotas.admit_generation(ADAS_KEY)
    await quotas.admit_generation(ADA)
    await quotas.record_tokens(ADA, 90)
    with pytest.raises(RateLimited):
        await quotas.admit_generation(ADA)
    clock.advance(timedelta(minutes=1))
    await quotas.admit_generation(ADAS_KEY)


async def test_zero_turns_a_limit_off() -> None:
    quotas, _ = _quotas(RateLimitPolicy())
    for _ in range(100):
        await quotas.admit_request(ADAS_KEY)
        await quotas.record_tokens(ADAS_KEY, 1000)
    await quotas.admit_generation(ADAS_KEY)
