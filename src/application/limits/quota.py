"""Requests and tokens per minute, per user and per API key (429 `too_many_requests` with Retry-After).

Fixed windows: a bucket counts what was spent since the start of the current window; a hit is refused when
the bucket had already reached its limit before it. Pure arithmetic here; the counting lives in a RateLimiter.
"""

import math
from dataclasses import dataclass

from application.ports.clock import Clock
from application.ports.rate_limit import QuotaHit, RateLimiter
from domain.errors import RateLimited
from domain.user import Principal


def window_end(now: float, window_seconds: int) -> float:
    """The instant the fixed window holding `now` ends."""
    return (math.floor(now / window_seconds) + 1) * window_seconds


def refusal(total_after: int, hit: QuotaHit, now: float) -> int | None:
    """Seconds to wait (>= 1) when the bucket had reached its limit before this hit added its cost, else None."""
    if total_after - hit.cost < hit.limit:
        return None
    return max(1, math.ceil(window_end(now, hit.window_seconds) - now))


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """Operator-set limits (from settings); 0 turns one off. A key-scoped principal counts against its key's
    limits and its owner's user limits: the key caps one integration, the user caps the whole account."""

    user_rpm: int = 0
    key_rpm: int = 0
    user_tpm: int = 0
    key_tpm: int = 0
    window_seconds: int = 60


class Quotas:
    """Admits requests and generations under the per-minute limits; counts billed tokens after settlement."""

    def __init__(self, limiter: RateLimiter, policy: RateLimitPolicy, clock: Clock) -> None:
        self._limiter = limiter
        self._policy = policy
        self._clock = clock

    async def admit_request(self, principal: Principal) -> None:
        """Count one request; raise RateLimited when the user or the key already used its requests."""
        policy = self._policy
        await self._admit(self._hits(principal, "rpm", 1, policy.user_rpm, policy.key_rpm))

    async def admit_generation(self, principal: Principal) -> None:
        """Raise RateLimited while the user's or the key's tokens of this minute are used up."""
        policy = self._policy
        await self._admit(self._hits(principal, "tpm", 0, policy.user_tpm, policy.key_tpm))

    async def record_tokens(self, principal: Principal, tokens: int) -> None:
        """Count the tokens a settled generation was billed for (prompt + completion)."""
        policy = self._policy
        hits = self._hits(principal, "tpm", tokens, policy.user_tpm, policy.key_tpm)
        if hits and tokens > 0:
            await self._limiter.hit(hits, self._clock.now().timestamp())

    async def _admit(self, hits: list[QuotaHit]) -> None:
        if not hits:
            return
        retry_after = await self._limiter.hit(hits, self._clock.now().timestamp())
        if retry_after is not None:
            raise RateLimited(retry_after, "rate limit reached; retry after the time in Retry-After")

    def _hits(self, principal: Principal, unit: str, cost: int, user_limit: int, key_limit: int) -> list[QuotaHit]:
        window = self._policy.window_seconds
        hits = []
        if user_limit > 0:
            hits.append(QuotaHit(f"user:{principal.user_id}:{unit}", cost, user_limit, window))
        if key_limit > 0 and principal.api_key is not None:
            hits.append(QuotaHit(f"key:{principal.api_key}:{unit}", cost, key_limit, window))
        return hits
