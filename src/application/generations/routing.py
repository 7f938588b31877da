"""Routing one generation across its model's deployments, and the health of every deployment in this process.

In memory and per process, so routing costs no database round trip: each process learns on its own which
deployments fail (a dead upstream fails every process alike, and each opens its breaker after a few requests)."""

import random
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from application.ports.clock import Clock
from application.ports.llm import CompletionRequest, LLMProvider, StreamEvent
from application.ports.metrics import RoutingMetrics
from domain.errors import DomainError, ProviderFailure
from domain.routing import CLOSED, Attempt, Breaker, BreakerPolicy, BreakerState, Deployment, Failure, attempt_order

ANSWERED = "answered"
UNAVAILABLE = "unavailable"
"""The provider is not configured (or failed in a way no deployment is to blame for)."""
ABANDONED = "abandoned"
"""The generation ended (its client left) while this attempt waited for its first token."""


@dataclass(frozen=True, slots=True)
class DeploymentState:
    deployment: str
    state: BreakerState
    consecutive_failures: int
    open_until: datetime | None


class DeploymentHealth:
    """Each deployment's circuit breaker in this process; a deployment never failed (or recovered) has none."""

    def __init__(
        self,
        clock: Clock,
        policy: BreakerPolicy,
        metrics: RoutingMetrics,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._clock = clock
        self._policy = policy
        self._metrics = metrics
        self._rng = rng
        self._breakers: dict[str, Breaker] = {}

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        """The deployments to try, in order: those whose breaker admits them (by priority, by weight within one),
        then as a last resort those cooling down, by priority. So a deployment is skipped while another can serve,
        and breakers alone never make a model unavailable (nor does one deployment route around anything)."""
        if len(deployments) == 1:
            return list(deployments)
        now = self._clock.now()
        admitted = attempt_order(deployments, lambda d: self._breaker(d).admits(now, self._policy), self._rng)
        cooling = [d for d in sorted(deployments, key=lambda d: d.priority) if d not in admitted]
        return admitted + cooling

    def trying(self, deployment: Deployment) -> None:
        """A request is about to try it: if its breaker is half-open, that request is its probe."""
        breaker = self._breakers.get(deployment.key)
        if breaker is not None and breaker.admits(now := self._clock.now(), self._policy):
            self._set(deployment, breaker.admitted(now))

    def succeeded(self, deployment: Deployment) -> None:
        if deployment.key in self._breakers:
            del self._breakers[deployment.key]
            self._metrics.breaker(deployment.key, BreakerState.CLOSED)

    def failed(self, deployment: Deployment, error: ProviderFailure) -> None:
        self._set(deployment, self._breaker(deployment).failed(self._clock.now(), self._policy, error.retry_after))

    def states(self) -> dict[str, DeploymentState]:
        """The deployments with a breaker (the others are closed, with no failure)."""
        now = self._clock.now()
        return {
            key: DeploymentState(key, breaker.state(now), breaker.failures, breaker.open_until)
            for key, breaker in self._breakers.items()
        }

    def _breaker(self, deployment: Deployment) -> Breaker:
        return self._breakers.get(deployment.key, CLOSED)

    def _set(self, deployment: Deployment, breaker: Breaker) -> None:
        self._breakers[deployment.key] = breaker
        self._metrics.breaker(deployment.key, breaker.state(self._clock.now()))


class Route:
    """One generation's way through the deployments `health` ordered: it opens the first stream, and after a
    failure before the first token that another deployment may not share (connect error, timeout, 429, 5xx) the
    next one. The run tells it how each attempt ended; it records them for the settlement."""

    def __init__(
        self,
        candidates: Sequence[tuple[Deployment, LLMProvider]],
        request: CompletionRequest,
        health: DeploymentHealth,
        clock: Clock,
        metrics: RoutingMetrics,
    ) -> None:
        self._candidates = list(candidates)
        self._request = request
        self._health = health
        self._clock = clock
        self._metrics = metrics
        self._attempts: list[Attempt] = []
        self._current, self._first_provider = self._candidates.pop(0)
        self._waiting = False
        self._started_at = clock.now()

    def first(self) -> AsyncGenerator[StreamEvent, None]:
        """The first deployment's stream (there is at least one candidate)."""
        return self._open(self._current, self._first_provider)

    def failed(self, error: ProviderFailure) -> AsyncGenerator[StreamEvent, None] | None:
        """The current attempt failed before its first token: the next deployment's stream, or None (the error
        stands: not one to fail over on, or no deployment left)."""
        failure, deployment = error.failure, self._current
        self._finish(failure or UNAVAILABLE)
        if failure is not None and failure is not Failure.CLIENT_ERROR:  # the request's fault, not the deployment's
            self._health.failed(deployment, error)
        if failure is None or not failure.fails_over:
            return None
        if not self._candidates:
            return None
        self._metrics.failover(deployment.key, failure)
        return self._open(*self._candidates.pop(0))

    def answered(self) -> None:
        """The current attempt produced its first token (or a whole empty answer)."""
        ttft = self._clock.now() - self._started_at
        self._finish(ANSWERED, int(ttft.total_seconds() * 1000))

    def ended(self, error: DomainError | None) -> None:
        """The stream of the deployment that answered ended: a failure mid-stream is retried nowhere, but counts
        against its breaker like one before the first token; any other end is a success."""
        if isinstance(error, ProviderFailure) and error.failure not in {None, Failure.CLIENT_ERROR}:
            self._health.failed(self._current, error)
        else:
            self._health.succeeded(self._current)

    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt, the one still waiting for its first token counted as abandoned."""
        if self._waiting:
            self._finish(ABANDONED)
        return tuple(self._attempts)

    def _open(self, deployment: Deployment, provider: LLMProvider) -> AsyncGenerator[StreamEvent, None]:
        self._health.trying(deployment)
        self._current, self._waiting, self._started_at = deployment, True, self._clock.now()
        request, retry = self._request, not self._candidates  # the last deployment may take its time
        if deployment.upstream_model != request.upstream_model or retry != request.retry_unavailable:
            request = replace(request, upstream_model=deployment.upstream_model, retry_unavailable=retry)
        return provider.stream(request)

    def _finish(self, outcome: str, ttft_ms: int | None = None) -> None:
        self._waiting = False
        self._attempts.append(Attempt(self._current.key, outcome, ttft_ms))
        self._metrics.attempt(self._current.key, outcome)
