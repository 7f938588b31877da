"""An in-memory GenerationMetrics: what the use cases reported, in order."""

from dataclasses import dataclass, field

from application.ports.metrics import GenerationMetrics, GenerationProbe, RoutingMetrics
from domain.credits import Credits
from domain.generation import GenerationStatus
from domain.pricing import Usage
from domain.routing import BreakerState, Failure

Report = tuple[object, ...]


@dataclass
class RecordingProbe(GenerationProbe):
    provider: str
    model: str
    reports: list[Report] = field(default_factory=list)

    def first_token(self) -> None:
        self.reports.append(("first_token",))

    def upstream_error(self, code: str) -> None:
        self.reports.append(("upstream_error", code))

    def settled(self, status: GenerationStatus, billed: Usage, cost: Credits) -> None:
        self.reports.append(("settled", status, billed, cost))

    def closed(self) -> None:
        self.reports.append(("closed",))


@dataclass
class RecordingMetrics(GenerationMetrics):
    probes: list[RecordingProbe] = field(default_factory=list)
    reaped_counts: list[int] = field(default_factory=list)

    def started(self, provider: str, model: str) -> GenerationProbe:
        self.probes.append(RecordingProbe(provider, model))
        return self.probes[-1]

    def reaped(self, count: int) -> None:
        self.reaped_counts.append(count)


@dataclass
class RecordingRoutingMetrics(RoutingMetrics):
    attempts: list[tuple[str, str]] = field(default_factory=list)
    failovers: list[tuple[str, Failure]] = field(default_factory=list)
    breakers: dict[str, BreakerState] = field(default_factory=dict)

    def attempt(self, deployment: str, outcome: str) -> None:
        self.attempts.append((deployment, outcome))

    def failover(self, deployment: str, reason: Failure) -> None:
        self.failovers.append((deployment, reason))

    def breaker(self, deployment: str, state: BreakerState) -> None:
        self.breakers[deployment] = state
