"""`/metrics` for Prometheus only: a peer in a trusted network (loopback by default), or the metrics token."""

import hmac
import ipaddress
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusController
from litestar.types import Guard

from domain.errors import Forbidden, Unauthenticated


class MetricsForbidden(Forbidden):
    code = "metrics_forbidden"
    default_detail = "Metrics are served to trusted networks only."


class MetricsUnauthorized(Unauthenticated):
    code = "metrics_unauthorized"
    default_detail = "Metrics need the metrics bearer token."


METRICS_PATH = "/metrics"
Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def networks_of(allowed_networks: list[str]) -> Networks:
    return [ipaddress.ip_network(network, strict=False) for network in allowed_networks]


def metrics_controller(allowed_networks: list[str], token: str | None) -> type[PrometheusController]:
    networks = networks_of(allowed_networks)
    expected = f"Bearer {token}".encode() if token else None

    def trusted(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """The peer as uvicorn saw it (a trusted proxy's `X-Forwarded-For` included), never a header of ours."""
        if in_networks(connection.client.host if connection.client else "", networks):
            return
        if expected is None:
            raise MetricsForbidden
        presented = connection.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, expected):
            raise MetricsUnauthorized

    metrics_guards: list[Guard] = [trusted]

    class MetricsController(PrometheusController):
        path = METRICS_PATH
        include_in_schema = False
        guards = metrics_guards

    return MetricsController


def in_networks(host: str, networks: Networks) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # not an address: a Unix socket peer, or the in-process test client
        return False
    return any(address in network for network in networks)
