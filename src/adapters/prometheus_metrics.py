"""GenerationMetrics on prometheus_client's process-wide registry (the one `GET /metrics` exposes).

Each process has its own registry; the workers of one `serve --workers N` write theirs to a shared
multiprocess directory (entrypoints/shared_metrics.py), so a scrape of any of them reports their sum. Several
instances are scraped each and summed in queries (docs/scaling.md). The families are created once per process;
label children are bound once per model and then only incremented, so a generation costs a few dict lookups and
float additions, with no I/O (in multiprocess mode: writes to a memory map).
"""

import time
from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

from application.ports.metrics import GenerationMetrics, GenerationProbe, RoutingMetrics
from domain.credits import Credits
from domain.generation import GenerationStatus
from domain.pricing import Usage
from domain.routing import BreakerState, Failure

TIME_TO_FIRST_TOKEN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


@dataclass(frozen=True, slots=True)
class _Families:
    generations: Counter
    tokens: Counter
    charged: Counter
    time_to_first_token: Histogram
    upstream_errors: Counter
    open_streams: Gauge
    reaped: Counter


@cache
def _families() -> _Families:
    """Registered once per process (a second registration of a name would raise)."""
    return _Families(
        generations=Counter(
            "creditgate_generations",
            "Generations settled by this process, by catalog model and final status (completed, cancelled, failed).",
            ["model", "status"],
        ),
        tokens=Counter(
            "creditgate_tokens",
            "Tokens billed for settled generations, by catalog model and type (prompt, completion); "
            "a refunded generation bills none.",
            ["model", "type"],
        ),
        charged=Counter(
            "creditgate_charged_microcredits",
            "Cost of settled generations in micro-credits (1 credit = 1 000 000), by catalog model.",
            ["model"],
        ),
        time_to_first_token=Histogram(
            "creditgate_upstream_time_to_first_token_seconds",
            "From opening the upstream request (retries included) to its first text delta, by provider and model.",
            ["provider", "model"],
            buckets=TIME_TO_FIRST_TOKEN_BUCKETS,
        ),
        upstream_errors=Counter(
            "creditgate_upstream_errors",
            "Provider failures (before or during a stream), by provider and error code.",
            ["provider", "code"],
        ),
        open_streams=Gauge(
            "creditgate_open_streams",
            "Generations whose upstream stream is open in this process (streamed to the client or not).",
            multiprocess_mode="livesum",
        ),
        reaped=Counter(
            "creditgate_generations_reaped",
            "Generations of a crashed instance settled by this process's reaper (failed, error code interrupted).",
        ),
    )


class _ModelSeries:
    """The label children of one (provider, model), bound once."""

    __slots__ = ("by_status", "charged", "completion", "prompt", "provider", "time_to_first_token")

    def __init__(self, families: _Families, provider: str, model: str) -> None:
        self.provider = provider
        self.by_status = {status: families.generations.labels(model, status.value) for status in GenerationStatus}
        self.prompt = families.tokens.labels(model, "prompt")
        self.completion = families.tokens.labels(model, "completion")
        self.charged = families.charged.labels(model)
        self.time_to_first_token = families.time_to_first_token.labels(provider, model)


class _Probe(GenerationProbe):
    __slots__ = ("_metrics", "_series", "_started")

    def __init__(self, metrics: "PrometheusGenerationMetrics", series: _ModelSeries) -> None:
        self._metrics = metrics
        self._series = series
        self._started = time.perf_counter()

    def first_token(self) -> None:
        self._series.time_to_first_token.observe(time.perf_counter() - self._started)

    def upstream_error(self, code: str) -> None:
        self._metrics.upstream_error(self._series.provider, code)

    def settled(self, status: GenerationStatus, billed: Usage, cost: Credits) -> None:
        series = self._series
        series.by_status[status].inc()
        if billed.input_tokens:
            series.prompt.inc(billed.input_tokens)
        if billed.output_tokens:
            series.completion.inc(billed.output_tokens)
        if cost.micros:
            series.charged.inc(cost.micros)

    def closed(self) -> None:
        self._metrics.open_streams.dec()


class PrometheusGenerationMetrics(GenerationMetrics):
    def __init__(self) -> None:
        self._families = _families()
        self.open_streams = self._families.open_streams
        self._series: dict[tuple[str, str], _ModelSeries] = {}
        self._errors: dict[tuple[str, str], Counter] = {}

    def started(self, provider: str, model: str) -> GenerationProbe:
        series = self._series.get((provider, model))
        if series is None:
            series = self._series[provider, model] = _ModelSeries(self._families, provider, model)
        self.open_streams.inc()
        return _Probe(self, series)

    def upstream_error(self, provider: str, code: str) -> None:
        child = self._errors.get((provider, code))
        if child is None:
            child = self._errors[provider, code] = self._families.upstream_errors.labels(provider, code)
        child.inc()

    def reaped(self, count: int) -> None:
        self._families.reaped.inc(count)


@cache
def _routing_families() -> tuple[Counter, Counter, Gauge]:
    return (
        Counter(
            "creditgate_deployment_attempts",
            "Attempts on a deployment (provider/upstream_model), by outcome: answered, abandoned, unavailable, or "
            "the failure (connect, timeout, rate_limited, server_error, client_error, broken).",
            ["deployment", "outcome"],
        ),
        Counter(
            "creditgate_deployment_failovers",
            "Generations that left a deployment for the model's next one before the first token, by reason.",
            ["deployment", "reason"],
        ),
        Gauge(
            "creditgate_deployment_breaker_state",
            "A deployment's circuit breaker in this process: 0 closed, 1 half-open, 2 open (the worst process "
            "under multiprocess mode).",
            ["deployment"],
            multiprocess_mode="max",
        ),
    )


BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class PrometheusRoutingMetrics(RoutingMetrics):
    """Each generation reports one attempt at least: its counter child is bound once per (deployment, outcome)."""

    def __init__(self) -> None:
        self._attempts, self._failovers, self._breakers = _routing_families()
        self._attempt_children: dict[tuple[str, str], Counter] = {}

    def attempt(self, deployment: str, outcome: str) -> None:
        child = self._attempt_children.get((deployment, outcome))
        if child is None:
            child = self._attempt_children[deployment, outcome] = self._attempts.labels(deployment, outcome)
        child.inc()

    def failover(self, deployment: str, reason: Failure) -> None:
        self._failovers.labels(deployment, reason.value).inc()

    def breaker(self, deployment: str, state: BreakerState) -> None:
        self._breakers.labels(deployment).set(BREAKER_GAUGE[state])
