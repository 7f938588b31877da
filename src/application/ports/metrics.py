"""What the generation use cases report for monitoring. Calls sit on the hot path: adapters keep them cheap
(no I/O, no lock held across an await, label children bound once per model)."""

from abc import abstractmethod
from typing import Protocol

from domain.credits import Credits
from domain.generation import GenerationStatus
from domain.pricing import Usage
from domain.routing import BreakerState, Failure


class GenerationProbe(Protocol):
    """One generation's reports, in order: `first_token` at most once, `upstream_error` when the provider fails,
    `settled` once when this process settled it, and `closed` exactly once when its upstream stream is closed."""

    @abstractmethod
    def first_token(self) -> None:
        """The first text arrived from the provider (time to first token is measured from the probe's start)."""

    @abstractmethod
    def upstream_error(self, code: str) -> None:
        """The provider failed (`upstream_error`, `provider_unavailable`)."""

    @abstractmethod
    def settled(self, status: GenerationStatus, billed: Usage, cost: Credits) -> None:
        """The final status, the tokens charged for (zero when the pre-charge was refunded), and the cost."""

    @abstractmethod
    def closed(self) -> None:
        """The upstream stream is closed, whether or not the generation could be settled."""


class GenerationMetrics(Protocol):
    @abstractmethod
    def started(self, provider: str, model: str) -> GenerationProbe:
        """A generation is about to open its upstream stream (it counts as open until `closed`)."""

    @abstractmethod
    def reaped(self, count: int) -> None:
        """The reaper settled `count` generations abandoned by a crashed instance (`failed`, `interrupted`)."""


class RoutingMetrics(Protocol):
    """Attempts on deployments (keyed `provider/upstream_model`) and their breakers."""

    @abstractmethod
    def attempt(self, deployment: str, outcome: str) -> None:
        """An attempt ended: `answered`, `abandoned`, `unavailable` or a Failure."""

    @abstractmethod
    def failover(self, deployment: str, reason: Failure) -> None:
        """A generation left `deployment` for the next one."""

    @abstractmethod
    def breaker(self, deployment: str, state: BreakerState) -> None:
        """The deployment's breaker is now in `state`."""


class _NoProbe(GenerationProbe):
    def first_token(self) -> None:
        pass

    def upstream_error(self, code: str) -> None:
        pass

    def settled(self, status: GenerationStatus, billed: Usage, cost: Credits) -> None:
        pass

    def closed(self) -> None:
        pass


NO_PROBE = _NoProbe()
