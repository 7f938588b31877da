"""Faults of the deployment's parts, each while load runs through Caddy, each followed by an audit: every
generation ends, every balance equals its ledger, and every generation a client saw end is billed what it was
told, once. The measured figures go to .artifacts/deploy/faults.json (docs/scaling.md quotes them)."""

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.generations.reaper import INTERRUPTED
from domain.credits import Credits
from tests.deploy.conftest import Accounts, Deployment
from tests.support.audit import ledger_violations
from tests.support.load import REQUEST_BOUND_SECONDS, Load, Outcome, running_load, tally
from tests.support.money import generation_violations
from tests.support.topology import REPOSITORY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

OUTAGE_SECONDS = 2.0
RECOVERY_BOUND_SECONDS = 5.0
"""After a part is back, requests succeed again within this (PgBouncer retries its server login every second,
Caddy checks the replicas' health every second)."""
FIGURES = REPOSITORY / ".artifacts" / "deploy" / "faults.json"


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, object]]:
    measured: dict[str, object] = {}
    yield measured
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(measured, indent=2) + "\n")


async def test_a_redis_restart_leaves_the_limits_open(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine, figures: dict[str, object]
) -> None:
    async with deployment.client() as http, running_load(http, accounts.users) as load:
        await asyncio.sleep(1)
        down = load.now()
        deployment.redis.kill()
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(deployment.redis.start)
        back = load.now()
        await asyncio.sleep(1.5)
    assert tally(load.outcomes) == {"200": len(load.outcomes)}, "no request fails because Redis is away"
    store = redis.Redis(port=deployment.redis.port)
    try:
        assert store.dbsize() > 0, "the replicas counted in Redis again once it was back"
    finally:
        store.close()
    figures["redis_restart"] = _figures(load, down, back)
    await _audit(engine, load.outcomes)


async def test_a_pgbouncer_restart_is_503_with_retry_after_then_over(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine, figures: dict[str, object]
) -> None:
    async with deployment.client() as http, running_load(http, accounts.users) as load:
        await asyncio.sleep(1)
        down = load.now()
        deployment.pgbouncer.kill()
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(deployment.pgbouncer.start)
        back = load.now()
        await asyncio.sleep(RECOVERY_BOUND_SECONDS + 1)
    _assert_an_outage(load, down, back)
    figures["pgbouncer_restart"] = _figures(load, down, back)
    await _audit(engine, load.outcomes)


async def test_a_postgresql_restart_is_503_with_retry_after_then_over(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine, figures: dict[str, object]
) -> None:
    async with deployment.client() as http, running_load(http, accounts.users) as load:
        await asyncio.sleep(1)
        down = load.now()
        await asyncio.to_thread(deployment.postgres.stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(deployment.postgres.start)
        back = load.now()
        await asyncio.sleep(RECOVERY_BOUND_SECONDS + 1)
    _assert_an_outage(load, down, back)
    figures["postgresql_restart"] = _figures(load, down, back)
    await _audit(engine, load.outcomes)


async def test_a_replica_killed_mid_stream_is_routed_around_and_reaped(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine, figures: dict[str, object]
) -> None:
    """Last of the package: it leaves two replicas."""
    async with deployment.client() as http, running_load(http, accounts.users) as load:
        await asyncio.sleep(1)
        killed = load.now()
        deployment.cluster.kill(0, signal.SIGKILL)
        await asyncio.sleep(3)
    orphans = await _running(engine)
    assert orphans, "the killed replica was streaming"
    started = time.monotonic()
    await _wait_all_ended(engine, seconds=15)
    settled_after_kill = load.now() - killed
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT status, error_code FROM generations WHERE id = ANY(:ids)"),
                {"ids": [uuid.UUID(i) for i in orphans]},
            )
        ).all()
    assert {(row.status, row.error_code) for row in rows} == {("failed", INTERRUPTED)}
    routed_around = [o for o in load.outcomes if o.started > killed + 0.5]
    assert routed_around
    assert tally(routed_around) == {"200": len(routed_around)}
    broken = [o for o in load.outcomes if o.error or o.status != 200]
    assert all(o.started <= killed <= o.ended for o in broken), "only requests in flight on the killed replica fail"
    assert all(o.status == 503 and o.retry_after for o in broken if o.status is not None), tally(broken)
    figures["replica_sigkill"] = _figures(load, killed, killed) | {
        "orphaned_generations": len(orphans),
        "reaper_settled_all_after_kill_s": round(settled_after_kill, 2),
        "reaper_wait_after_load_s": round(time.monotonic() - started, 2),
    }
    await _audit(engine, load.outcomes)


def _assert_an_outage(load: Load, down: float, back: float) -> None:
    """503 with Retry-After during the outage and only then; no other failure; nothing past its bound; and every
    request that starts once the part has been back for a while succeeds."""
    unavailable = [o for o in load.outcomes if o.status == 503]
    others = [o for o in load.outcomes if o.status != 503 and (o.error or o.stream_error or o.status != 200)]
    assert unavailable, "the outage was seen"
    assert all(o.retry_after for o in unavailable)
    assert all(o.started < back + RECOVERY_BOUND_SECONDS and o.ended > down for o in unavailable), tally(unavailable)
    assert not others, [(o.kind, o.started, o.ended, o.status, o.error, o.stream_error) for o in others]
    assert max(o.duration for o in load.outcomes) < REQUEST_BOUND_SECONDS
    after = [o for o in load.outcomes if o.started > back + RECOVERY_BOUND_SECONDS]
    assert after
    assert tally(after) == {"200": len(after)}


def _figures(load: Load, down: float, back: float) -> dict[str, object]:
    unavailable = [o for o in load.outcomes if o.status == 503]
    recovered = [o.ended for o in load.outcomes if o.status == 200 and o.started > back]
    return {
        "requests": len(load.outcomes),
        "outcomes": tally(load.outcomes),
        "outage_s": round(back - down, 2),
        "first_503_after_fault_s": round(min(o.ended for o in unavailable) - down, 2) if unavailable else None,
        "last_503_after_restore_s": round(max(o.ended for o in unavailable) - back, 2) if unavailable else None,
        "first_success_after_restore_s": round(min(recovered) - back, 2) if recovered else None,
        "slowest_request_s": round(max(o.duration for o in load.outcomes), 2),
    }


async def _running(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        ids = (await connection.execute(text("SELECT id FROM generations WHERE status = 'running'"))).scalars()
        return {str(i) for i in ids}


async def _wait_all_ended(engine: AsyncEngine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while await _running(engine):
        assert time.monotonic() < deadline, "every generation ends (the reaper settles a dead replica's)"
        await asyncio.sleep(0.1)


async def _audit(engine: AsyncEngine, outcomes: list[Outcome]) -> None:
    await _wait_all_ended(engine, seconds=15)
    assert await generation_violations(engine) == []
    assert await ledger_violations(engine) == []
    told = {generation: Credits.parse(cost).micros for generation, cost in (o.settled for o in outcomes if o.settled)}
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT id, status, cost FROM generations WHERE id = ANY(:ids)"),
                {"ids": [uuid.UUID(i) for i in told]},
            )
        ).all()
    assert len(rows) == len(told)
    assert {str(row.id): (row.status, row.cost) for row in rows} == {g: ("completed", c) for g, c in told.items()}
