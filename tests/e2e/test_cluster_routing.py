"""Two `creditgate serve` processes sharing nothing but PostgreSQL, routing a model whose primary is dead: each
process learns the primary's health on its own (its breaker), yet the same script gives the same balances and
ledgers through one instance as through both, and every generation is settled exactly once."""

import json
import socket
from itertools import cycle
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from entrypoints.settings import Settings
from tests.support.api import PASSWORD, bearer, fund
from tests.support.audit import ledger_violations
from tests.support.cluster import running_cluster
from tests.support.fake_upstream import fail_before_first, serve_fake_upstream, steady
from tests.support.money import balances_by_username, generation_violations

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HELLO = [{"role": "user", "content": "Say hello to the world"}]
PRICING = {"unit_tokens": 1, "input_credits": "0.01", "output_credits": "0.02"}
MODELS = {
    # a dead primary (the closed port behind `openai`) in front of a healthy secondary
    "routed": [("openai", "dead", 0), ("second", "alive", 1)],
    # both dead: the secondary answers 503
    "doomed": [("openai", "dead", 0), ("second", "overloaded", 1)],
}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _script(http: httpx.AsyncClient, urls: list[str], admin: str, prefix: str) -> list[str]:
    """Two funded users, each generating on both models, streamed and not, round robin over `urls`."""
    servers = cycle(urls)
    seen: list[str] = []
    tokens = []
    for index in range(2):
        name = f"{prefix}{index}"
        user = await http.post(f"{next(servers)}/api/v1/auth/register", json={"username": name, "password": PASSWORD})
        await fund(http, admin, user.json()["id"], "10", base=next(servers))
        login = await http.post(f"{next(servers)}/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        tokens.append(login.json()["access_token"])
    for step in range(12):
        model = "doomed" if step % 4 == 3 else "routed"
        body = {"model": model, "messages": HELLO, "stream": step % 2 == 1}
        response = await http.post(f"{next(servers)}/api/v1/generations", json=body, headers=bearer(tokens[step % 2]))
        last_event = [line for line in response.text.splitlines() if line.startswith("event:")][-1:]
        seen.append(f"{model} {response.status_code} {' '.join(last_event)}")
    return seen


async def _billed(engine: AsyncEngine, prefix: str) -> tuple[dict[str, int], list[tuple[str, str, int, int]]]:
    """Each user's balance, and the generations that cost something (model, status, output tokens, cost). A
    generation refused by open breakers before its pre-charge and one refunded after failing on every deployment
    leave the same balance, and which one happens depends on what each process has seen."""
    async with engine.connect() as connection:
        generations = await connection.execute(
            text(
                "SELECT g.model, g.status, g.output_tokens, g.cost FROM generations g JOIN users u ON u.id = g.user_id "
                "WHERE u.username LIKE :p AND g.cost > 0"
            ),
            {"p": f"{prefix}%"},
        )
        billed = sorted((row.model, row.status, row.output_tokens, row.cost) for row in generations)
    return await balances_by_username(engine, prefix), billed


async def test_two_instances_routing_around_a_dead_primary_bill_as_one(
    settings: Settings, clean_db: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve_fake_upstream() as upstream:
        upstream.use_for("alive", steady(3))
        upstream.use_for("overloaded", fail_before_first(503))
        instances = {"second": {"protocol": "openai", "base_url": f"{upstream.base_url}/v1", "api_key": "sk-2"}}
        environment = {
            "OPENAI_BASE_URL": f"{_closed_port_url()}/v1",
            "OPENAI_API_KEY": "sk-1",
            "PROVIDER_INSTANCES": json.dumps(instances),
            "ROUTING_BREAKER_FAILURES": "2",
        }
        with running_cluster(2, database_url, tmp_path, **environment) as cluster:
            async with httpx.AsyncClient(timeout=30) as http:
                await create_admin(settings, Registration(username="routing-admin", password=PASSWORD))
                base = cluster.urls[0]
                login = await http.post(
                    f"{base}/api/v1/auth/login", json={"username": "routing-admin", "password": PASSWORD}
                )
                admin = login.json()["access_token"]
                for model, deployments in MODELS.items():
                    listed = [{"provider": p, "upstream_model": m, "priority": n} for p, m, n in deployments]
                    body = {"id": model, "deployments": listed, "pricing": PRICING, "max_output_tokens": 100}
                    created = await http.post(f"{base}/api/v1/admin/models", json=body, headers=bearer(admin))
                    assert created.status_code == 201, created.text
                seen_one = await _script(http, cluster.urls[:1], admin, "one-")
                seen_two = await _script(http, cluster.urls, admin, "two-")
                states = [
                    (await http.get(f"{url}/api/v1/admin/deployments", headers=bearer(admin))).json()["items"]
                    for url in cluster.urls
                ]
    assert seen_one == seen_two
    assert set(seen_one) == {"routed 200 ", "routed 200 event: done", "doomed 503 "}, seen_one
    one, two = await _billed(clean_db, "one-"), await _billed(clean_db, "two-")
    assert one == two
    assert len(one[1]) == 9  # every `routed` generation answered and billed, no `doomed` one
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []
    for items in states:  # each process opened its own breaker on the dead primary
        assert {i["deployment"]: i["state"] for i in items if i["model"] == "routed"}["openai/dead"] == "open"
