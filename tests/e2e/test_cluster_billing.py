"""Three `creditgate serve` processes on one PostgreSQL: bursts, crashes and shutdowns never lose or double a charge."""

import asyncio
import signal
import time
from collections import Counter
from itertools import cycle
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from entrypoints.settings import Settings
from tests.support.api import PASSWORD, bearer, fund
from tests.support.audit import ledger_violations
from tests.support.cluster import Cluster
from tests.support.fake_upstream import FakeUpstream, fail_after, fail_before_first, steady
from tests.support.keys import signed_login
from tests.support.money import balances_by_username, generation_violations

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HELLO = [{"role": "user", "content": "Say hello to the world"}]


async def _setup(http: httpx.AsyncClient, settings: Settings, cluster: Cluster, username: str) -> tuple[str, str, str]:
    """An admin token, a client token and the client's id, through the cluster's first instance."""
    await create_admin(settings, Registration(username="cluster-admin", password=PASSWORD))
    base = cluster.urls[0]
    admin = await http.post(f"{base}/api/v1/auth/login", json={"username": "cluster-admin", "password": PASSWORD})
    registered = await http.post(f"{base}/api/v1/auth/register", json={"username": username, "password": PASSWORD})
    client = await http.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    return admin.json()["access_token"], client.json()["access_token"], registered.json()["id"]


async def _running(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM generations WHERE status = 'running'")))


@pytest.mark.parametrize("affordable", [1, 3, 7])
async def test_a_burst_over_three_instances_spends_exactly_the_balance(
    cluster: Cluster, settings: Settings, clean_db: AsyncEngine, affordable: int
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        admin, token, user_id = await _setup(http, settings, cluster, "burst")
        base = cluster.urls[0]
        model = {
            "id": "prompt-priced",
            "provider": "simulator",
            "upstream_model": "prompt-priced",
            "pricing": {"unit_tokens": 1, "input_credits": "1", "output_credits": "0"},
            "max_output_tokens": 8,
        }
        assert (await http.post(f"{base}/api/v1/admin/models", json=model, headers=bearer(admin))).status_code == 201
        body = {"model": "prompt-priced", "messages": HELLO, "max_tokens": 1}
        await fund(http, admin, user_id, "1000", base=base)
        first = await http.post(f"{base}/api/v1/generations", json=body, headers=bearer(token))
        prompt_cost = first.json()["cost"]
        balance = (await http.get(f"{base}/api/v1/me/balance", headers=bearer(token))).json()["balance"]
        await fund(http, admin, user_id, f"-{balance}", base=base)
        await fund(http, admin, user_id, str(int(prompt_cost) * affordable), base=base)
        urls = cycle(cluster.urls)
        responses = await asyncio.gather(
            *(http.post(f"{next(urls)}/api/v1/generations", json=body, headers=bearer(token)) for _ in range(50))
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == affordable, statuses
    assert statuses.count(402) == 50 - affordable
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


async def _open_streams(http: httpx.AsyncClient, base: str, token: str, count: int) -> list[Any]:
    body = {"model": "dr14", "messages": HELLO, "max_tokens": 2000, "stream": True}
    streams = []
    for _ in range(count):
        request = http.build_request("POST", f"{base}/api/v1/generations", json=body, headers=bearer(token))
        response = await http.send(request, stream=True)
        assert response.status_code == 200
        lines = response.aiter_lines()
        while "event: delta" not in await anext(lines):
            pass
        streams.append((response, lines))  # the line iterator too: collecting it would close the stream
    return streams


async def _reaped_metric(http: httpx.AsyncClient, url: str) -> float:
    families = text_string_to_metric_families((await http.get(f"{url}/metrics")).text)
    samples = [s for f in families for s in f.samples if s.name == "creditgate_generations_reaped_total"]
    return sum(sample.value for sample in samples)


async def test_a_killed_instance_s_streams_are_settled_by_the_reaper(
    cluster: Cluster, settings: Settings, clean_db: AsyncEngine
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        admin, token, user_id = await _setup(http, settings, cluster, "crash")
        await fund(http, admin, user_id, "100000", base=cluster.urls[0])
        streams = await _open_streams(http, cluster.urls[0], token, 20)
        assert await _running(clean_db) == 20
        reaped_before = sum([await _reaped_metric(http, url) for url in cluster.urls[1:]])
        cluster.kill(0, signal.SIGKILL)
        deadline = time.monotonic() + 3 + 1 + 3
        while await _running(clean_db) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        for response, _ in streams:
            await response.aclose()
        reaped = [await _reaped_metric(http, url) for url in cluster.urls[1:]]
        while (
            sum(reaped) - reaped_before < 20 and time.monotonic() < deadline + 2
        ):  # counted just after the reaper's commit
            await asyncio.sleep(0.1)
            reaped = [await _reaped_metric(http, url) for url in cluster.urls[1:]]
    assert await _running(clean_db) == 0
    assert sum(reaped) - reaped_before == 20, "each process counts what its reaper settled; summed over the survivors"
    async with clean_db.connect() as connection:
        rows = (await connection.execute(text("SELECT status, error_code, output_tokens FROM generations"))).all()
    assert {(row.status, row.error_code) for row in rows} == {("failed", "interrupted")}
    assert any(row.output_tokens > 0 for row in rows), "checkpoints record the tokens of the older streams"
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


async def test_sigterm_leaves_no_generation_running(
    cluster: Cluster, settings: Settings, clean_db: AsyncEngine
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        admin, token, user_id = await _setup(http, settings, cluster, "graceful")
        await fund(http, admin, user_id, "100000", base=cluster.urls[1])
        streams = await _open_streams(http, cluster.urls[1], token, 5)
        cluster.kill(1, signal.SIGTERM)
        cluster.instances[1].process.wait(timeout=30)
        for response, _ in streams:
            await response.aclose()
    assert await _running(clean_db) == 0
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


UPSTREAM_MODELS = {"m12-ok": steady(3), "m12-refused": fail_before_first(500), "m12-broken": fail_after(2)}


def _step(step: int) -> tuple[dict[str, Any], bool]:
    """The request of one step: the simulator and a scripted upstream, streamed or not, completing or failing."""
    model, stream = [
        ("dr14", False),
        ("dr14", True),
        ("m12-ok", False),
        ("m12-refused", step % 2 == 0),  # fails before its first token: refunded, 502
        ("m12-ok", True),
        ("m12-broken", True),  # two tokens, then the upstream breaks off: charged for them, `error` event
    ][step % 6]
    messages = [{"role": "user", "content": f"step {step}"}]
    return {"model": model, "messages": messages, "max_tokens": 5 + step, "stream": stream}, stream


async def _generate(http: httpx.AsyncClient, url: str, token: str, body: dict[str, Any], stream: bool) -> str:
    """What the client saw: the status, and for a stream the name of its last event."""
    if not stream:
        return str((await http.post(f"{url}/api/v1/generations", json=body, headers=bearer(token))).status_code)
    async with http.stream("POST", f"{url}/api/v1/generations", json=body, headers=bearer(token)) as response:
        events = [line async for line in response.aiter_lines() if line.startswith("event:")]
    return f"{response.status_code} {events[-1] if events else ''}"


async def _script(http: httpx.AsyncClient, urls: list[str], admin: str, prefix: str) -> list[str]:
    """A deterministic mix spread over `urls`: registrations, top-ups (one replayed by its Idempotency-Key),
    a deduction, generations streamed and not, completed, refused for the balance, failed before the first token
    (refunded) and broken off midway (charged)."""
    servers = cycle(urls)
    tokens, ids, seen = [], [], []
    for index in range(3):
        name = f"{prefix}{index}"
        user = await http.post(f"{next(servers)}/api/v1/auth/register", json={"username": name, "password": PASSWORD})
        ids.append(user.json()["id"])
        for _ in range(2):  # the same top-up twice: one ledger row
            response = await http.post(
                f"{next(servers)}/api/v1/admin/users/{ids[-1]}/balance",
                json={"amount": str(5 * (index + 1)), "reason": "top-up"},
                headers=bearer(admin) | {"Idempotency-Key": f"{name}-top-up"},
            )
            seen.append(str(response.status_code))
        login = await http.post(f"{next(servers)}/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        tokens.append(login.json()["access_token"])
    for step in range(18):
        if step == 9:
            await fund(http, admin, ids[1], "-2.5", base=next(servers))
        body, stream = _step(step)
        seen.append(await _generate(http, next(servers), tokens[step % 3], body, stream))
    return seen


async def _ledgers(engine: AsyncEngine, prefix: str) -> dict[str, list[tuple[str, int, int]]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT u.username, l.kind, l.amount, l.balance_after FROM ledger_entries l "
                "JOIN users u ON u.id = l.user_id WHERE u.username LIKE :prefix ORDER BY l.seq"
            ),
            {"prefix": f"{prefix}%"},
        )
        ledgers: dict[str, list[tuple[str, int, int]]] = {}
        for row in rows:
            ledgers.setdefault(row.username.removeprefix(prefix), []).append((row.kind, row.amount, row.balance_after))
    return ledgers


async def _balances_and_generations(
    engine: AsyncEngine, prefix: str
) -> tuple[dict[str, int], Counter[tuple[Any, ...]]]:
    async with engine.connect() as connection:
        generations = await connection.execute(
            text(
                "SELECT u.username, g.model, g.status, g.input_tokens, g.output_tokens, g.cost, g.error_code "
                "FROM generations g JOIN users u ON u.id = g.user_id WHERE u.username LIKE :p"
            ),
            {"p": f"{prefix}%"},
        )
        records = Counter((row[0].removeprefix(prefix), *row[1:]) for row in generations)
    return await balances_by_username(engine, prefix), records


async def test_three_instances_give_the_same_balances_and_ledgers_as_one(
    cluster: Cluster, cluster_upstream: FakeUpstream, settings: Settings, clean_db: AsyncEngine
) -> None:
    """M12: the same deterministic script against one instance, then round robin over three."""
    for model, script in UPSTREAM_MODELS.items():
        cluster_upstream.use_for(model, script)
    async with httpx.AsyncClient(timeout=30) as http:
        admin, _, _ = await _setup(http, settings, cluster, "equivalence")
        for model in UPSTREAM_MODELS:
            created = await http.post(
                f"{cluster.urls[0]}/api/v1/admin/models",
                json={
                    "id": model,
                    "provider": "openai",
                    "upstream_model": model,
                    "pricing": {"unit_tokens": 1, "input_credits": "0.01", "output_credits": "0.02"},
                    "max_output_tokens": 100,
                },
                headers=bearer(admin),
            )
            assert created.status_code == 201, created.text
        seen_one = await _script(http, cluster.urls[:1], admin, "one-")
        seen_three = await _script(http, cluster.urls, admin, "three-")
    assert seen_one == seen_three
    assert {"200", "402", "502", "200 event: done", "200 event: error"} <= set(seen_one), seen_one
    one, three = await _ledgers(clean_db, "one-"), await _ledgers(clean_db, "three-")
    assert one == three  # per user, in order: equal multisets of (kind, amount, balance_after), and more
    assert {kind for entries in one.values() for kind, _, _ in entries} >= {"admin_adjustment", "generation", "refund"}
    assert sorted(e for entries in one.values() for e in entries) == sorted(
        e for entries in three.values() for e in entries
    )
    assert await _balances_and_generations(clean_db, "one-") == await _balances_and_generations(clean_db, "three-")
    assert len(one) == 3
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


async def test_one_signed_login_sent_fifty_times_over_three_instances_succeeds_once(
    cluster: Cluster, settings: Settings, clean_db: AsyncEngine
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        admin, _, user_id = await _setup(http, settings, cluster, "replayer")
        typeid = {
            "typeid": "t",
            "scale": 5,
            "system": "s",
            "user": "{reference}{text}",
            "model": "dr14",
            "llm": "simulator",
        }
        assert (
            await http.post(f"{cluster.urls[0]}/api/v1/types", json=typeid, headers=bearer(admin))
        ).status_code == 201
        key = (
            await http.post(
                f"{cluster.urls[0]}/api/v1/keys", json={"user_id": user_id, "typeid": "t"}, headers=bearer(admin)
            )
        ).json()
        body = signed_login(key["api_key"], "replayer", key["secret_key"])
        urls = cycle(cluster.urls)
        responses = await asyncio.gather(*(http.post(f"{next(urls)}/api/v1/auth", json=body) for _ in range(50)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert {r.json()["code"] for r in responses if r.status_code != 200} == {"replayed_nonce"}


async def test_revocation_on_one_instance_is_immediate_on_another(
    cluster: Cluster, settings: Settings, clean_db: AsyncEngine
) -> None:
    a, b = cluster.urls[0], cluster.urls[1]
    async with httpx.AsyncClient(timeout=30) as http:
        admin, client_token, user_id = await _setup(http, settings, cluster, "revoked")
        typeid = {
            "typeid": "r",
            "scale": 5,
            "system": "s",
            "user": "{reference}{text}",
            "model": "dr14",
            "llm": "simulator",
        }
        await http.post(f"{a}/api/v1/types", json=typeid, headers=bearer(admin))
        key = (
            await http.post(f"{a}/api/v1/keys", json={"user_id": user_id, "typeid": "r"}, headers=bearer(admin))
        ).json()
        key_token = await http.post(f"{b}/api/v1/auth", json=signed_login(key["api_key"], "revoked", key["secret_key"]))
        key_token = key_token.json()["access_token"]
        subscription = f"/api/v1/subscription/{key['api_key']}"
        assert (await http.get(f"{b}{subscription}", headers=bearer(key_token))).status_code == 200
        assert (await http.delete(f"{a}/api/v1/keys/{key['api_key']}", headers=bearer(admin))).status_code == 204
        assert (await http.get(f"{b}{subscription}", headers=bearer(key_token))).status_code == 401
        suspended = (
            await http.post(f"{a}/api/v1/keys", json={"user_id": user_id, "typeid": "r"}, headers=bearer(admin))
        ).json()
        login = await http.post(
            f"{b}/api/v1/auth", json=signed_login(suspended["api_key"], "revoked", suspended["secret_key"])
        )
        suspended_token = login.json()["access_token"]
        assert (await http.get(f"{b}/api/v1/me", headers=bearer(suspended_token))).status_code == 200
        patched_key = await http.patch(
            f"{a}/api/v1/keys/{suspended['api_key']}", json={"status": "suspended"}, headers=bearer(admin)
        )
        assert patched_key.status_code == 200
        refused = await http.get(f"{b}/api/v1/me", headers=bearer(suspended_token))
        assert (refused.status_code, refused.json()["code"]) == (403, "subscription_inactive")
        assert (await http.get(f"{b}/api/v1/me", headers=bearer(client_token))).status_code == 200
        patched = await http.patch(
            f"{a}/api/v1/admin/users/{user_id}", json={"is_active": False}, headers=bearer(admin)
        )
        assert patched.status_code == 200
        assert (await http.get(f"{b}/api/v1/me", headers=bearer(client_token))).status_code == 401
