"""Faults of the deployment's parts, each while load runs through Caddy, each followed by an audit: every
generation ends, every balance equals its ledger, and every generation a client saw end is billed what it was
told, once. The measured figures go to .artifacts/deploy/faults.json (docs/scaling.md quotes them)."""

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

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
from tests.support.topology import REPOSITORY, replica_metric

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

OUTAGE_SECONDS = 2.0
RECOVERY_BOUND_SECONDS = 5.0
"""After a part is back, requests succeed again within this (PgBouncer retries its server login every second,
Caddy checks the replicas' health every second)."""
NOTICED_SECONDS = 1.5
"""A request Caddy sends the killed replica on a connection it had open fails (it retries only a refused dial);
by then its health check (every second here) has taken the replica out of rotation."""
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
    figures["pgbouncer_restart"] = await _outage(
        deployment, accounts, engine, deployment.pgbouncer.kill, deployment.pgbouncer.start
    )


async def test_a_postgresql_restart_is_503_with_retry_after_then_over(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine, figures: dict[str, object]
) -> None:
    figures["postgresql_restart"] = await _outage(
        deployment, accounts, engine, deployment.postgres.stop, deployment.postgres.start
    )


async def _outage(
    deployment: Deployment,
    accounts: Accounts,
    engine: AsyncEngine,
    stop: Callable[[], object],
    start: Callable[[], object],
) -> dict[str, object]:
    """A part of the database path stopped under load for OUTAGE_SECONDS, then started again: its figures."""
    since = datetime.now(UTC)
    async with deployment.client() as http, running_load(http, accounts.users) as load:
        await asyncio.sleep(1)
        down = load.now()
        await asyncio.to_thread(stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(start)
        back = load.now()
        await asyncio.sleep(RECOVERY_BOUND_SECONDS + 2)
    await _assert_an_outage(load, down, back, engine)
    outage = _figures(load, down, back) | await _reaped(engine, since)
    await _audit(engine, load.outcomes)
    return outage


async def test_a_replica_killed_mid_stream_is_routed_around_and_reaped(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine, figures: dict[str, object]
) -> None:
    """Last of the package: it leaves two replicas."""
    async with deployment.client() as http, running_load(http, accounts.users) as load:
        await asyncio.sleep(1)
        victim = deployment.cluster.urls[0]
        deadline = time.monotonic() + 5
        while not await replica_metric(victim, "creditgate_open_streams"):
            assert time.monotonic() < deadline, "the replica streams"
        running_then = await _running(engine)
        killed, killed_at = load.now(), datetime.now(UTC)
        deployment.cluster.kill(0, signal.SIGKILL)
        await asyncio.sleep(3)
    await _wait_all_ended(engine, seconds=15)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT finished_at FROM generations WHERE id = ANY(:ids) AND error_code = :interrupted"),
                {"ids": [uuid.UUID(i) for i in running_then], "interrupted": INTERRUPTED},
            )
        ).all()
    assert rows, "the killed replica was streaming; the survivors' reaper settled its generations"
    routed_around = [o for o in load.outcomes if o.started > killed + NOTICED_SECONDS]
    assert routed_around
    assert tally(routed_around) == {"200": len(routed_around)}
    broken = [o for o in load.outcomes if o.error or o.status != 200]
    assert [o for o in broken if o.started < killed], "streams were cut"
    assert all(killed < o.ended and o.started < killed + NOTICED_SECONDS for o in broken), [
        (o.kind, o.started, o.ended, o.status, o.error, killed) for o in broken
    ]
    cut = [o for o in broken if o.status == 200]  # Caddy ends the response when the replica's stream breaks off
    assert all(o.kind == "stream" and o.error and not o.cost for o in cut), tally(cut)
    assert all(o.status == 503 and o.retry_after for o in broken if o.status not in {None, 200}), tally(broken)
    figures["replica_sigkill"] = _figures(load, killed, killed) | {
        "cut_in_flight": len([o for o in broken if o.started < killed]),
        "sent_to_the_dead_replica_before_caddy_noticed": len([o for o in broken if o.started >= killed]),
        "generations_reaped": len(rows),
        "reaped_after_kill_s": sorted(round((row.finished_at - killed_at).total_seconds(), 2) for row in rows),
    }
    await _audit(engine, load.outcomes)


async def _assert_an_outage(load: Load, down: float, back: float, engine: AsyncEngine) -> None:
    """503 with Retry-After during the outage and only then; a stream that ends in it relays all its text and ends
    with a `service_unavailable` event (its charge could not be written: the reaper settles it once its lease
    runs out); no other failure; nothing past its bound; and every request that starts once the part has been back
    for a while succeeds."""
    unavailable = [o for o in load.outcomes if o.status == 503]
    deferred = _deferred(load.outcomes)
    others = [
        o
        for o in load.outcomes
        if o.status != 503 and o not in deferred and (o.error or o.stream_error or o.status != 200)
    ]
    assert unavailable, "the outage was seen"
    assert all(o.ended > down and o.started < back + RECOVERY_BOUND_SECONDS for o in deferred)
    await _wait_all_ended(engine, seconds=15)
    async with engine.connect() as connection:
        ids = [uuid.UUID(o.generation) for o in deferred if o.generation]
        rows = (
            await connection.execute(
                text("SELECT status, error_code FROM generations WHERE id = ANY(:ids)"), {"ids": ids}
            )
        ).all()
    assert len(rows) == len(deferred)
    assert {(row.status, row.error_code) for row in rows} <= {("failed", INTERRUPTED)}
    assert all(o.retry_after for o in unavailable), [
        (o.kind, o.started, o.ended, o.body) for o in unavailable if not o.retry_after
    ]
    assert all(o.started < back + RECOVERY_BOUND_SECONDS and o.ended > down for o in unavailable), tally(unavailable)
    assert not others, [(o.kind, o.started, o.ended, o.status, o.error, o.stream_error) for o in others]
    assert max(o.duration for o in load.outcomes) < REQUEST_BOUND_SECONDS
    after = [o for o in load.outcomes if o.started > back + RECOVERY_BOUND_SECONDS]
    assert after
    assert tally(after) == {"200": len(after)}


def _deferred(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.status == 200 and o.stream_error == "service_unavailable"]


def _figures(load: Load, down: float, back: float) -> dict[str, object]:
    """Times in seconds from the fault; a request started while the part was away and answered 200 was held by
    Caddy (no replica in rotation: it waits up to lb_try_duration for one) or waited for PgBouncer."""
    unavailable = sorted(o.ended - down for o in load.outcomes if o.status == 503)
    recovered = [o.ended - back for o in load.outcomes if o.status == 200 and o.started > back]
    held = [o for o in load.outcomes if o.status == 200 and down <= o.started <= back]
    return {
        "requests": len(load.outcomes),
        "outcomes": tally(load.outcomes),
        "part_away_s": round(back - down, 2),
        "503_answered_between_s": [round(unavailable[0], 2), round(unavailable[-1], 2)] if unavailable else None,
        "streams_settled_by_the_reaper": len(_deferred(load.outcomes)),
        "started_while_away_and_answered_200": len(held),
        "first_200_after_restore_s": round(min(recovered), 2) if recovered else None,
        "slowest_request_s": round(max(o.duration for o in load.outcomes), 2),
    }


async def _reaped(engine: AsyncEngine, since: datetime) -> dict[str, object]:
    """The generations of the run the reaper settled (their charge could not be written when they ended): how
    many, and the output tokens and micro-credits it billed from their checkpoints."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT count(*) AS n, COALESCE(sum(output_tokens), 0) AS tokens, COALESCE(sum(cost), 0) AS cost "
                    "FROM generations WHERE created_at >= :since AND error_code = :interrupted"
                ),
                {"since": since, "interrupted": INTERRUPTED},
            )
        ).one()
    return {"reaped_generations": row.n, "reaped_output_tokens": int(row.tokens), "reaped_cost_micros": int(row.cost)}


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
    told = {o.generation: Credits.parse(o.cost).micros for o in outcomes if o.generation and o.cost}
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT id, status, cost FROM generations WHERE id = ANY(:ids)"),
                {"ids": [uuid.UUID(i) for i in told]},
            )
        ).all()
    assert len(rows) == len(told)
    assert {str(row.id): (row.status, row.cost) for row in rows} == {g: ("completed", c) for g, c in told.items()}
