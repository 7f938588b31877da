"""The process's own adapters: the clock, identifiers, and the generation metrics Prometheus scrapes."""

from dishka import Provider, Scope, provide

from adapters.prometheus_metrics import PrometheusGenerationMetrics, PrometheusRoutingMetrics
from adapters.system_clock import SystemClock, UuidGenerator
from application.ports.clock import Clock, IdGenerator
from application.ports.metrics import GenerationMetrics, RoutingMetrics


class SystemProvider(Provider):
    scope = Scope.APP

    clock = provide(SystemClock, provides=Clock)
    ids = provide(UuidGenerator, provides=IdGenerator)
    metrics = provide(PrometheusGenerationMetrics, provides=GenerationMetrics)
    routing_metrics = provide(PrometheusRoutingMetrics, provides=RoutingMetrics)
