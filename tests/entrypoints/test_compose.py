"""compose.yaml and deploy/Caddyfile, checked as files (no Docker engine here): several production API replicas
behind a TLS-terminating, health-checking, round-robin Caddy; every long-running service health-checked and
waited for; no secret written down."""

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from entrypoints.cli import PROJECT_ROOT

yaml = pytest.importorskip("yaml")

SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY")
REQUIRED_VARIABLE = re.compile(r"^\$\{[A-Z_]+:\?[^}]+\}$")
URL_PASSWORD = re.compile(r"://[^:/@]+:([^@]+)@")
PLACEHOLDER = re.compile(r"\{\$[A-Z0-9_]+:([^}]+)\}")
"""A Caddyfile environment placeholder and its default (compose's value; tests/deploy sets others)."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def caddyfile() -> str:
    return (PROJECT_ROOT / "deploy" / "Caddyfile").read_text()


def _api_replicas(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if "serve" in service.get("command", [])}


def _replica_count(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def _one_shot(name: str, services: dict[str, dict[str, Any]]) -> bool:
    """A job others wait for to *finish*, not to be healthy."""
    waits = [s.get("depends_on", {}).get(name, {}).get("condition") for s in services.values()]
    return services[name].get("restart") == "no" and "service_completed_successfully" in waits


def test_several_api_replicas_run_the_image_in_production_mode(services: dict[str, dict[str, Any]]) -> None:
    replicas = _api_replicas(services)
    assert sum(_replica_count(service) for service in replicas.values()) >= 2
    for service in replicas.values():
        environment = service["environment"]
        assert environment["CREDITGATE_ENV"] == "production"
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert "@pgbouncer:6432/" in environment["DATABASE_URL"]
        assert environment["DB_PGBOUNCER"] == "true"
        assert "--no-migrate" in service["command"]
        assert "ports" not in service, "replicas are reached through the proxy only"


def test_the_replicas_trust_exactly_the_compose_network_as_proxy(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    subnet = ipaddress.ip_network(compose["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    caddy_address = ipaddress.ip_address(services["caddy"]["networks"]["backend"]["ipv4_address"])
    assert caddy_address in subnet
    for service in _api_replicas(services).values():
        trusted = [ipaddress.ip_network(item.strip()) for item in service["environment"]["TRUSTED_PROXIES"].split(",")]
        assert subnet in trusted
        assert all(network.prefixlen >= 8 for network in trusted), "never trust the whole internet"


def test_every_long_running_service_has_a_health_check_and_is_waited_for(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if _one_shot(name, services):
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if _one_shot(dependency, services) else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)
    assert services["migrate"]["command"] == ["creditgate", "migrate"]


def test_the_api_health_check_asks_for_readiness(services: dict[str, dict[str, Any]]) -> None:
    for service in _api_replicas(services).values():
        assert "/health/ready" in " ".join(service["healthcheck"]["test"])


def test_no_secret_is_written_down(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, service in services.items():
        for variable, raw in (service.get("environment") or {}).items():
            value = str(raw)
            if SECRETISH.search(variable):
                assert REQUIRED_VARIABLE.match(value), f"{name}.{variable} must come from the environment"
                checked += 1
            if password := URL_PASSWORD.search(value):
                assert REQUIRED_VARIABLE.match(password.group(1)), f"{name}.{variable} embeds a password"
                checked += 1
    assert checked >= 4
    for variable in ("JWT_SECRET", "SECRET_KEYS"):
        assert variable in next(iter(_api_replicas(services).values()))["environment"]


def test_caddy_terminates_tls_and_balances_over_every_replica(
    services: dict[str, dict[str, Any]], caddyfile: str
) -> None:
    caddy = services["caddy"]
    assert caddy["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert "443:443" in caddy["ports"]
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    placeholders = next(line for line in lines if line.startswith("reverse_proxy ")).split()[1:-1]
    upstreams = [PLACEHOLDER.fullmatch(placeholder).group(1) for placeholder in placeholders]  # type: ignore[union-attr]
    replicas = _api_replicas(services)
    assert sorted(upstreams) == sorted(f"{name}:3000" for name in replicas)
    for directive in (
        "tls internal",
        "lb_policy round_robin",
        "health_uri /health/ready",
        "X-Forwarded-Proto https",
        "flush_interval -1",
        "respond @metrics 404",
    ):
        assert directive in lines, directive
    assert caddyfile.count("{") == caddyfile.count("}")


def test_the_replicas_pool_through_pgbouncer_with_the_shared_settings(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """PgBouncer runs deploy/pgbouncer.ini (as tests/deploy does) from a file that includes it first; migrations
    go straight to PostgreSQL."""
    configs = compose["configs"]
    assert configs["pgbouncer-settings"]["file"] == "./deploy/pgbouncer.ini"
    assert "pool_mode = transaction" in (PROJECT_ROOT / "deploy" / "pgbouncer.ini").read_text()
    pgbouncer = services["pgbouncer"]
    mounted = {config["source"]: config["target"] for config in pgbouncer["configs"]}
    own = configs["pgbouncer-compose"]["content"]
    assert pgbouncer["command"] == [mounted["pgbouncer-compose"]]
    assert f"%include {mounted['pgbouncer-settings']}" in own
    assert "creditgate = host=postgres port=5432 dbname=creditgate" in own
    assert "listen_port = 6432" in own
    assert pgbouncer["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    migrate = services["migrate"]["environment"]
    assert "@postgres:5432/" in migrate["DATABASE_URL"]
    assert migrate["DB_PGBOUNCER"] == "false"


def test_the_dockerfile_serves_what_compose_runs() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "EXPOSE 3000" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile
    assert Path(PROJECT_ROOT / "uv.lock").is_file()
