"""A model on two deployments behind real (fake) upstreams on loopback: the primary refuses, stalls, answers
429/5xx or dies after k tokens; the gateway fails over before the first token only, opens and recovers the
primary's breaker, and bills each generation exactly once (the ledger audit holds after every test)."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from litestar import Litestar
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token, fund, user_id_of
from tests.support.audit import ledger_violations
from tests.support.fake_upstream import (
    FakeUpstream,
    Script,
    fail_after,
    fail_before_first,
    serve_fake_upstream,
    steady,
)
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

GENERATIONS = "/api/v1/generations"
HELLO = [{"role": "user", "content": "hello there"}]
PRIMARY, SECONDARY = "openai/fake-a", "second/fake-b"
COOLDOWN_S = 1.0


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def primary() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        yield fake


@pytest.fixture
async def secondary() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        yield fake


def _gateway(settings: Settings, primary_url: str, secondary: FakeUpstream) -> Litestar:
    instances = {"second": {"protocol": "openai", "base_url": f"{secondary.base_url}/v1", "api_key": "sk-second"}}
    return create_app(
        replace_settings(
            settings,
            providers={
                "openai_base_url": f"{primary_url}/v1",
                "openai_api_key": "sk-first",
                "read_timeout_seconds": 0.5,
                "instances": json.dumps(instances),
            },
            routing={"breaker_failures": 3, "breaker_cooldown_seconds": COOLDOWN_S},
        )
    )


@pytest.fixture
async def http(
    settings: Settings, primary: FakeUpstream, secondary: FakeUpstream, clean_db: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_on_loopback(_gateway(settings, primary.base_url, secondary)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        yield client


async def _routed_client(http: httpx.AsyncClient, settings: Settings) -> tuple[str, str]:
    """(admin token, funded client token) and the model `routed`: fake-a on `openai`, then fake-b on `second`."""
    admin = await admin_token(http, settings)
    model = {
        "id": "routed",
        "deployments": [
            {"provider": "openai", "upstream_model": "fake-a", "priority": 0},
            {"provider": "second", "upstream_model": "fake-b", "priority": 1},
        ],
        "pricing": {"unit_tokens": 1, "input_credits": "0.001", "output_credits": "0.002"},
        "max_output_tokens": 1000,
    }
    created = await http.post("/api/v1/admin/models", json=model, headers=bearer(admin))
    assert created.status_code == 201, created.text
    user = await client_token(http, "routed-user")
    await fund(http, admin, await user_id_of(http, user), "100")
    return admin, user


@pytest.fixture
async def tokens(http: httpx.AsyncClient, settings: Settings) -> tuple[str, str]:
    return await _routed_client(http, settings)


@pytest.fixture(autouse=True)
async def _books_balance(clean_db: AsyncEngine) -> AsyncIterator[None]:
    yield
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


async def _generate(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(GENERATIONS, json={"model": "routed", "messages": HELLO}, headers=bearer(token))


async def _stream(http: httpx.AsyncClient, token: str) -> list[tuple[str, dict[str, Any]]]:
    body = {"model": "routed", "messages": HELLO, "stream": True}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        return [(event.event, json.loads(event.data)) async for event in source.aiter_sse()]


async def _attempts(http: httpx.AsyncClient, admin: str, generation_id: str) -> list[tuple[str, str]]:
    record = (await http.get(f"/api/v1/admin/generations/{generation_id}", headers=bearer(admin))).json()
    return [(a["deployment"], a["outcome"]) for a in record["attempts"]]


async def _balance(http: httpx.AsyncClient, token: str) -> str:
    return str((await http.get("/api/v1/me/balance", headers=bearer(token))).json()["balance"])


async def _breakers(http: httpx.AsyncClient, admin: str) -> dict[str, str]:
    listed = (await http.get("/api/v1/admin/deployments", headers=bearer(admin))).json()["items"]
    return {item["deployment"]: item["state"] for item in listed if item["model"] == "routed"}


async def _metric(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await http.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_a_dead_primary_never_shows_and_each_generation_is_billed_once(
    settings: Settings, secondary: FakeUpstream, clean_db: AsyncEngine
) -> None:
    """Acceptance: the primary refuses connections; every request is answered by the secondary, the primary is
    skipped once its breaker opened, and the balance is 100 less exactly the costs answered."""
    async with (
        serve_on_loopback(_gateway(settings, _closed_port_url(), secondary)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        admin, user = await _routed_client(http, settings)
        secondary.use(steady(3))
        costs = []
        for n in range(5):
            if n % 2:
                events = await _stream(http, user)
                assert events[0][0] == "start"
                assert events[-1][0] == "done", events
                costs.append(events[-1][1]["cost"])
                generation_id = events[-1][1]["id"]
            else:
                answer = await _generate(http, user)
                assert answer.status_code == 200, answer.text
                assert answer.json()["status"] == "completed"
                costs.append(answer.json()["cost"])
                generation_id = answer.json()["id"]
            expected = [(PRIMARY, "connect"), (SECONDARY, "answered")] if n < 3 else [(SECONDARY, "answered")]
            assert await _attempts(http, admin, generation_id) == expected
        assert len(secondary.requests) == 5
        assert {r.headers["authorization"] for r in secondary.requests} == {"Bearer sk-second"}
        spent = sum(float(c) for c in costs)
        assert float(await _balance(http, user)) == pytest.approx(100 - spent, abs=1e-6)
        assert (await _breakers(http, admin))[PRIMARY] == "open"


@pytest.mark.parametrize(
    ("script", "outcome"),
    [
        (Script(status=429, retry_after=30), "rate_limited"),
        (fail_before_first(500), "server_error"),
        (fail_before_first(503), "server_error"),
        (Script(ending="stall"), "timeout"),
        (Script(ending="abort"), "connect"),
    ],
    ids=["429", "500", "503", "stall", "dies-before-a-token"],
)
async def test_a_failure_before_the_first_token_fails_over(
    http: httpx.AsyncClient,
    tokens: tuple[str, str],
    primary: FakeUpstream,
    secondary: FakeUpstream,
    script: Script,
    outcome: str,
) -> None:
    admin, user = tokens
    primary.use(script)
    secondary.use(steady(3))
    answer = await _generate(http, user)
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"]["content"] == "tok0 tok1 tok2 "
    assert await _attempts(http, admin, answer.json()["id"]) == [(PRIMARY, outcome), (SECONDARY, "answered")]
    if outcome == "rate_limited":  # Retry-After: 30 keeps it out at once, below the breaker's threshold
        assert (await _breakers(http, admin))[PRIMARY] == "open"


async def test_an_unavailable_primary_is_not_asked_again_while_a_secondary_waits(
    http: httpx.AsyncClient, tokens: tuple[str, str], primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    """The adapter's pauses (0.1 s, 0.3 s) are for the last deployment: the others fail over at once."""
    _, user = tokens
    primary.use(fail_before_first(503))
    secondary.use(fail_before_first(503))
    assert (await _generate(http, user)).status_code == 503
    assert (len(primary.requests), len(secondary.requests)) == (1, 3)


async def test_nothing_is_retried_after_the_first_token(
    http: httpx.AsyncClient, tokens: tuple[str, str], primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    admin, user = tokens
    primary.use(fail_after(2))
    events = await _stream(http, user)
    assert [name for name, _ in events] == ["start", "delta", "delta", "error"]
    assert events[-1][1]["code"] == "upstream_error"
    assert events[-1][1]["usage"]["output_tokens"] == 2
    assert secondary.requests == []
    assert await _attempts(http, admin, events[0][1]["id"]) == [(PRIMARY, "answered")]


async def test_another_client_error_does_not_fail_over(
    http: httpx.AsyncClient, tokens: tuple[str, str], primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    _, user = tokens
    primary.use(fail_before_first(400))
    answer = await _generate(http, user)
    assert (answer.status_code, answer.json()["code"]) == (502, "upstream_error")
    assert secondary.requests == []
    assert await _balance(http, user) == "100"


async def test_with_every_deployment_dead_the_client_gets_503_and_a_full_refund(
    http: httpx.AsyncClient, tokens: tuple[str, str], primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    admin, user = tokens
    primary.use(fail_before_first(500))
    secondary.use(fail_before_first(503))
    failovers = await _metric(http, "creditgate_deployment_failovers_total", deployment=PRIMARY)
    answer = await _generate(http, user)
    assert (answer.status_code, answer.json()["code"]) == (503, "provider_unavailable")
    assert await _balance(http, user) == "100"
    generations = (await http.get(GENERATIONS, headers=bearer(user))).json()["items"]
    assert [g["status"] for g in generations] == ["failed"]
    attempts = await _attempts(http, admin, generations[0]["id"])
    assert attempts == [(PRIMARY, "server_error"), (SECONDARY, "server_error")]
    assert await _metric(http, "creditgate_deployment_failovers_total", deployment=PRIMARY) == failovers + 1


async def test_the_breaker_opens_after_consecutive_failures_then_one_probe_closes_it(
    http: httpx.AsyncClient, tokens: tuple[str, str], primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    admin, user = tokens
    primary.use(fail_before_first(500))
    secondary.use(steady(2))
    for _ in range(3):
        assert (await _generate(http, user)).status_code == 200
    assert (await _breakers(http, admin)) == {PRIMARY: "open", SECONDARY: "closed"}
    assert await _metric(http, "creditgate_deployment_breaker_state", deployment=PRIMARY) == 2
    asked = len(primary.requests)
    assert (await _generate(http, user)).status_code == 200
    assert len(primary.requests) == asked, "an open breaker is skipped"

    primary.use(steady(2))
    await asyncio.sleep(COOLDOWN_S)
    assert (await _breakers(http, admin))[PRIMARY] == "half_open"
    answer = await _generate(http, user)
    assert await _attempts(http, admin, answer.json()["id"]) == [(PRIMARY, "answered")]
    assert (await _breakers(http, admin))[PRIMARY] == "closed"
    assert await _metric(http, "creditgate_deployment_breaker_state", deployment=PRIMARY) == 0


async def test_the_deployments_route_is_for_admins_only(http: httpx.AsyncClient, tokens: tuple[str, str]) -> None:
    _, user = tokens
    assert (await http.get("/api/v1/admin/deployments", headers=bearer(user))).status_code == 403
