"""RELIABILITY M4: many generations over three instances with random disconnects and upstream failures; every
generation ends, each is charged exactly its price, and no request fails with a 5xx of our own making."""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from itertools import cycle
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.accounts.register import Registration
from domain.credits import Credits
from entrypoints.cli import create_admin
from entrypoints.settings import Settings
from tests.support.api import PASSWORD, bearer
from tests.support.audit import ledger_violations
from tests.support.cluster import Cluster, running_cluster
from tests.support.fake_upstream import FakeUpstream, fail_after, fail_before_first, serve_fake_upstream, steady
from tests.support.money import generation_violations

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

GENERATIONS = 200
USERS = 10
HELLO = [{"role": "user", "content": "tell me something"}]
MODELS = {"ok": steady(20, delay_s=0.005), "fail-first": fail_before_first(500), "fail-mid": fail_after(3)}
_PRICED_EXACTLY = text(
    """
    SELECT count(*) FROM generations
    WHERE status <> 'running' AND cost <> CASE WHEN status = 'failed' AND output_tokens = 0 THEN 0 ELSE
        ceil(input_tokens::numeric * input_credits / unit_tokens)
        + ceil(output_tokens::numeric * output_credits / unit_tokens)
    END
    """
)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        for model, script in MODELS.items():
            fake.use_for(model, script)
        yield fake


@pytest.fixture
def chaos_cluster(database_url: str, tmp_path: Path, clean_db: object, upstream: FakeUpstream) -> Iterator[Cluster]:
    with running_cluster(3, database_url, tmp_path, OPENAI_BASE_URL=f"{upstream.base_url}/v1") as cluster:
        yield cluster


async def _prepare(http: httpx.AsyncClient, settings: Settings, base: str) -> list[str]:
    await create_admin(settings, Registration(username="chaos-admin", password=PASSWORD))
    admin = (
        await http.post(f"{base}/api/v1/auth/login", json={"username": "chaos-admin", "password": PASSWORD})
    ).json()
    for model in MODELS:
        body = {
            "id": model,
            "provider": "openai",
            "upstream_model": model,
            "pricing": {"unit_tokens": 3, "input_credits": "0.007", "output_credits": "0.013"},
            "max_output_tokens": 100,
        }
        assert (
            await http.post(f"{base}/api/v1/admin/models", json=body, headers=bearer(admin["access_token"]))
        ).status_code == 201
    tokens = []
    for index in range(USERS):
        name = f"chaos{index}"
        user = (await http.post(f"{base}/api/v1/auth/register", json={"username": name, "password": PASSWORD})).json()
        await http.post(
            f"{base}/api/v1/admin/users/{user['id']}/balance",
            json={"amount": "1000", "reason": "chaos"},
            headers=bearer(admin["access_token"]),
        )
        login = await http.post(f"{base}/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        tokens.append(login.json()["access_token"])
    return tokens


async def _one(http: httpx.AsyncClient, url: str, token: str, rng: random.Random) -> int:
    model = rng.choices(list(MODELS), weights=[90, 5, 5])[0]
    stream = rng.random() < 0.5
    disconnect_after = rng.randint(0, 6) if stream and rng.random() < 0.3 else None
    body = {"model": model, "messages": HELLO, "stream": stream}
    async with http.stream("POST", f"{url}/api/v1/generations", json=body, headers=bearer(token)) as response:
        deltas = 0
        async for line in response.aiter_lines():
            if line.startswith("event: delta"):
                deltas += 1
                if disconnect_after is not None and deltas >= disconnect_after:
                    break
        return response.status_code


async def _read_balances(http: httpx.AsyncClient, url: str, token: str, done: asyncio.Event) -> list[int]:
    observed = []
    while not done.is_set():
        balance = (await http.get(f"{url}/api/v1/me/balance", headers=bearer(token))).json()["balance"]
        observed.append(Credits.parse(balance).micros)
        await asyncio.sleep(0.02)
    return observed


async def test_chaos_every_generation_ends_charged_exactly_its_price(
    chaos_cluster: Cluster, settings: Settings, clean_db: AsyncEngine
) -> None:
    rng = random.Random(20261123)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as http:
        tokens = await _prepare(http, settings, chaos_cluster.urls[0])
        urls, users = cycle(chaos_cluster.urls), cycle(tokens)
        limiter = asyncio.Semaphore(32)

        async def bounded() -> int:
            async with limiter:
                return await _one(http, next(urls), next(users), rng)

        done = asyncio.Event()
        reader = asyncio.create_task(_read_balances(http, chaos_cluster.urls[1], tokens[0], done))
        statuses = await asyncio.gather(*(bounded() for _ in range(GENERATIONS)))
        done.set()
        observed = await reader
    assert not [s for s in statuses if s >= 500 and s not in {502, 503}], statuses
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with clean_db.connect() as connection:
            if not await connection.scalar(text("SELECT count(*) FROM generations WHERE status = 'running'")):
                break
        await asyncio.sleep(0.2)
    async with clean_db.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM generations WHERE status = 'running'")) == 0
        assert await connection.scalar(text("SELECT count(*) FROM generations")) == GENERATIONS
        assert await connection.scalar(_PRICED_EXACTLY) == 0
        cancelled = await connection.scalar(text("SELECT count(*) FROM generations WHERE status = 'cancelled'"))
        written = set(
            (
                await connection.execute(
                    text(
                        "SELECT balance_after FROM ledger_entries l JOIN users u ON u.id = l.user_id "
                        "WHERE u.username = 'chaos0'"
                    )
                )
            ).scalars()
        )
    assert cancelled > 0
    assert observed, "the reader saw balances during the run"
    assert set(observed) <= written, "M11: every balance read is one the ledger wrote"
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []
