"""Routing a catalog model across its deployments: the order a generation tries them in, and each deployment's
circuit breaker. Pure: time and randomness are arguments."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import groupby

MIN_WEIGHT, MAX_WEIGHT = 1, 1000
MIN_PRIORITY, MAX_PRIORITY = 0, 100


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream serving a catalog model: a provider instance, its name for the model, its priority (lower is
    tried first) and its weight among the deployments of that priority."""

    provider: str
    upstream_model: str
    priority: int = 0
    weight: int = 1

    @property
    def key(self) -> str:
        """Its identity for health: the same upstream behind two catalog models is one deployment."""
        return f"{self.provider}/{self.upstream_model}"


class Failure(StrEnum):
    """Why an attempt on a deployment failed."""

    CONNECT = "connect"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    """A 4xx other than 429: the request itself is wrong, another deployment would refuse it as well."""
    BROKEN = "broken"
    """A malformed or truncated answer."""

    @property
    def fails_over(self) -> bool:
        """Worth another deployment (only before the first token)."""
        return self in _FAILOVER


_FAILOVER = frozenset({Failure.CONNECT, Failure.TIMEOUT, Failure.RATE_LIMITED, Failure.SERVER_ERROR})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a deployment: `outcome` is `answered`, `abandoned` or the Failure; `ttft_ms` the time to its
    first token (or end) when it answered."""

    deployment: str
    outcome: str
    ttft_ms: int | None = None


def attempt_order(
    deployments: Iterable[Deployment], admits: Callable[[Deployment], bool], random: Callable[[], float]
) -> list[Deployment]:
    """The admitted deployments in the order to try them: by priority, lowest first; within a priority a weighted
    random order (each next one drawn with probability proportional to its weight among those left)."""
    admitted = sorted((d for d in deployments if admits(d)), key=lambda d: d.priority)
    order: list[Deployment] = []
    for _, group in groupby(admitted, key=lambda d: d.priority):
        order.extend(_weighted_order(list(group), random))
    return order


def _weighted_order(group: list[Deployment], random: Callable[[], float]) -> list[Deployment]:
    order: list[Deployment] = []
    while group:
        point = random() * sum(d.weight for d in group)
        index = 0
        while index < len(group) - 1 and point >= group[index].weight:
            point -= group[index].weight
            index += 1
        order.append(group.pop(index))
    return order


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """After `failures` consecutive failures a deployment is skipped for `cooldown`, then one request probes it.
    A 429's Retry-After is a cool-down of its own, capped at `max_retry_after`."""

    failures: int = 3
    cooldown: timedelta = timedelta(seconds=30)
    max_retry_after: timedelta = timedelta(seconds=60)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Breaker:
    """One deployment's circuit breaker: closed (serving), open (skipped until `open_until`), then half-open (one
    probe at a time decides: a success closes it, a failure opens it again)."""

    failures: int = 0
    open_until: datetime | None = None
    probing_since: datetime | None = None

    def state(self, now: datetime) -> BreakerState:
        if self.open_until is None:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now < self.open_until else BreakerState.HALF_OPEN

    def admits(self, now: datetime, policy: BreakerPolicy) -> bool:
        """Closed, or half-open with no probe in flight (a probe that never reported frees it after a cool-down)."""
        match self.state(now):
            case BreakerState.CLOSED:
                return True
            case BreakerState.HALF_OPEN:
                return self.probing_since is None or now - self.probing_since >= policy.cooldown
        return False

    def admitted(self, now: datetime) -> "Breaker":
        """A request is about to try it: when half-open, that request is its probe."""
        return replace(self, probing_since=now) if self.state(now) is BreakerState.HALF_OPEN else self

    def succeeded(self) -> "Breaker":
        return CLOSED

    def failed(self, now: datetime, policy: BreakerPolicy, retry_after: timedelta | None = None) -> "Breaker":
        failures = self.failures + 1
        tripped = self.probing_since is not None or failures >= policy.failures
        cooldown = policy.cooldown if tripped else timedelta(0)
        if retry_after is not None:
            cooldown = max(cooldown, min(retry_after, policy.max_retry_after))
        open_until = now + cooldown if cooldown else self.open_until
        return Breaker(failures, open_until, None)


CLOSED = Breaker()
