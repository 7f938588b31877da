"""Bookkeeping tables stay bounded (SPEC §9): expired nonces, old throttle windows, old Idempotency-Keys, refresh
token families whose every token expired, and reference texts of revoked or expired keys or past their retention
are purged, in bounded batches, by every instance in the background."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres import tables
from adapters.postgres.engine import autocommit
from adapters.postgres.housekeeping import PgHousekeeping
from application.generations.housekeeping import (
    IDEMPOTENCY_RETENTION,
    THROTTLE_RETENTION,
    HousekeepingPolicy,
    PurgeExpiredRecords,
)
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.fakes.clock import FrozenClock
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

SECOND = timedelta(seconds=1)
RETENTION = timedelta(days=30)


def _purge(engine: AsyncEngine, now: datetime, batch: int = 1000, *, pgbouncer: bool = False) -> PurgeExpiredRecords:
    policy = HousekeepingPolicy(reference_retention=RETENTION, batch=batch)
    return PurgeExpiredRecords(PgHousekeeping(autocommit(engine, pgbouncer=pgbouncer)), FrozenClock(now), policy)


async def _column(engine: AsyncEngine, column: object) -> list[object]:
    async with engine.connect() as connection:
        return sorted((await connection.execute(select(column))).scalars().all())  # type: ignore[call-overload]


@pytest.mark.parametrize("pgbouncer", [False, True], ids=["autocommit", "transactions-for-pgbouncer"])
async def test_only_what_expired_is_purged(clean_db: AsyncEngine, pgbouncer: bool) -> None:
    """Behind PgBouncer each purge statement is a transaction of its own: it commits all the same."""
    now = datetime.now(UTC)
    async with clean_db.begin() as connection:
        await connection.execute(
            insert(tables.auth_nonces),
            [
                {"api_key": "ak", "nonce": "old", "expires_at": now - SECOND},
                {"api_key": "ak", "nonce": "live", "expires_at": now + SECOND},
            ],
        )
        await connection.execute(
            insert(tables.throttle_counters),
            [
                {"subject": "old", "window_start": now - THROTTLE_RETENTION - SECOND, "hits": 3},
                {"subject": "live", "window_start": now, "hits": 3},
            ],
        )
        await connection.execute(
            insert(tables.idempotency_keys),
            [
                {"scope": "s", "key": "old", "fingerprint": "f", "created_at": now - IDEMPOTENCY_RETENTION - SECOND},
                {"scope": "s", "key": "live", "fingerprint": "f", "created_at": now - timedelta(hours=24)},
            ],
        )
    purge = _purge(clean_db, now, pgbouncer=pgbouncer)
    assert await purge() == 3
    assert await purge() == 0
    assert await _column(clean_db, tables.auth_nonces.c.nonce) == ["live"]
    assert await _column(clean_db, tables.throttle_counters.c.subject) == ["live"]
    assert await _column(clean_db, tables.idempotency_keys.c.key) == ["live"]


async def _user(engine: AsyncEngine) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            insert(tables.users).values(id=user_id, username=f"u-{user_id.hex[:8]}", password_hash="h")
        )
    return user_id


async def test_a_refresh_family_goes_once_its_every_token_expired_consumed_or_revoked_alike(
    clean_db: AsyncEngine,
) -> None:
    """A consumed token is kept while its family lives: presenting it again is how a stolen token is detected."""
    now = datetime.now(UTC)
    user_id = await _user(clean_db)
    expired, live, revoked, revoked_live = (uuid.uuid4() for _ in range(4))

    def token(name: str, family: uuid.UUID, expires_at: datetime, **state: datetime) -> dict[str, object]:
        issued_at = expires_at - timedelta(days=30)
        row = {"token_hash": name.encode(), "family_id": family, "user_id": user_id, "issued_at": issued_at}
        return row | {"expires_at": expires_at, "used_at": None, "revoked_at": None} | state

    async with clean_db.begin() as connection:
        await connection.execute(
            insert(tables.refresh_tokens),
            [
                token("expired-used", expired, now - 2 * SECOND, used_at=now - 3 * SECOND),
                token("expired-last", expired, now - SECOND),
                token("live-used", live, now - SECOND, used_at=now - 2 * SECOND),
                token("live-current", live, now + SECOND),
                token("revoked", revoked, now - SECOND, revoked_at=now - 2 * SECOND),
                token("revoked-live", revoked_live, now + SECOND, revoked_at=now - SECOND),
            ],
        )
    assert await _purge(clean_db, now)() == 3
    assert await _column(clean_db, tables.refresh_tokens.c.token_hash) == [
        b"live-current",
        b"live-used",
        b"revoked-live",
    ]


async def test_a_reference_goes_with_its_key_or_after_its_retention(clean_db: AsyncEngine) -> None:
    now = datetime.now(UTC)
    user_id = await _user(clean_db)
    profile = {"typeid": "t", "scale": 10, "system": "s", "user_template": "{reference}{text}"}
    keys = {
        "active": {"status": "active", "expires_at": now + RETENTION},
        "suspended": {"status": "suspended", "expires_at": now + RETENTION},  # may be resumed: kept
        "revoked": {"status": "revoked", "expires_at": now + RETENTION},
        "expired": {"status": "active", "expires_at": now - SECOND},
    }
    async with clean_db.begin() as connection:
        await connection.execute(
            insert(tables.type_profiles).values(profile | {"model": "gemini-flash", "llm": "simulator"})
        )
        for api_key, state in keys.items():
            row = {"api_key": api_key, "user_id": user_id, "typeid": "t", "secret_ciphertext": b"c"}
            await connection.execute(insert(tables.api_keys).values(row | state))

        def reference(name: str, api_key: str, age: timedelta = SECOND) -> dict[str, object]:
            return {"id": uuid.uuid4(), "user_id": user_id, "api_key": api_key, "name": name, "content": "x"} | {
                "length": 1,
                "created_at": now - age,
            }

        await connection.execute(
            insert(tables.text_references),
            [
                reference("recent", "active"),
                reference("within retention", "active", RETENTION - SECOND),
                reference("past retention", "active", RETENTION + SECOND),
                reference("suspended key", "suspended"),
                reference("revoked key", "revoked"),
                reference("expired key", "expired"),
            ],
        )
    assert await _purge(clean_db, now)() == 3
    assert await _column(clean_db, tables.text_references.c.name) == ["recent", "suspended key", "within retention"]
    assert len(await _column(clean_db, tables.api_keys.c.api_key)) == 4  # the keys themselves stay (billing, audit)


async def test_a_backlog_is_purged_in_bounded_batches(clean_db: AsyncEngine) -> None:
    now = datetime.now(UTC)
    expired = [{"api_key": "ak", "nonce": f"n{i}", "expires_at": now - SECOND} for i in range(25)]
    async with clean_db.begin() as connection:
        await connection.execute(insert(tables.auth_nonces), expired)
    housekeeping = PgHousekeeping(autocommit(clean_db))
    deleted: list[int] = []

    class Counting(PgHousekeeping):
        async def purge(self, *args: object, **kwargs: object) -> int:
            deleted.append(await housekeeping.purge(*args, **kwargs))  # type: ignore[arg-type]
            return deleted[-1]

    policy = HousekeepingPolicy(reference_retention=RETENTION, batch=10)
    assert await PurgeExpiredRecords(Counting(autocommit(clean_db)), FrozenClock(now), policy)() == 25
    assert deleted == [10, 10, 5]


async def test_every_served_instance_runs_the_housekeeping(settings: Settings, clean_db: AsyncEngine) -> None:
    async with clean_db.begin() as connection:
        await connection.execute(
            insert(tables.auth_nonces), [{"api_key": "ak", "nonce": "stale", "expires_at": datetime.now(UTC) - SECOND}]
        )
    app = create_app(replace_settings(settings, housekeeping={"interval_seconds": 0.05}))
    async with serve_on_loopback(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.get("/health/live")).status_code == 200
        for _ in range(100):
            async with clean_db.connect() as connection:
                if not await connection.scalar(select(func.count()).select_from(tables.auth_nonces)):
                    break
            await asyncio.sleep(0.05)
    assert await _column(clean_db, tables.auth_nonces.c.nonce) == []
