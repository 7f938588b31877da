"""Bookkeeping tables stay bounded: expired nonces, old throttle windows and old Idempotency-Keys are purged."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import autocommit
from adapters.postgres.housekeeping import PgHousekeeping
from adapters.postgres.tables import auth_nonces, idempotency_keys, throttle_counters
from application.generations.housekeeping import IDEMPOTENCY_RETENTION, THROTTLE_RETENTION, PurgeExpiredRecords


class FrozenClock:
    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant


async def test_only_what_expired_is_purged(clean_db: AsyncEngine) -> None:
    now = datetime.now(UTC)
    second = timedelta(seconds=1)
    async with clean_db.begin() as connection:
        await connection.execute(
            insert(auth_nonces),
            [
                {"api_key": "ak", "nonce": "old", "expires_at": now - second},
                {"api_key": "ak", "nonce": "live", "expires_at": now + second},
            ],
        )
        await connection.execute(
            insert(throttle_counters),
            [
                {"subject": "old", "window_start": now - THROTTLE_RETENTION - second, "hits": 3},
                {"subject": "live", "window_start": now, "hits": 3},
            ],
        )
        await connection.execute(
            insert(idempotency_keys),
            [
                {"scope": "s", "key": "old", "fingerprint": "f", "created_at": now - IDEMPOTENCY_RETENTION - second},
                {"scope": "s", "key": "live", "fingerprint": "f", "created_at": now - timedelta(hours=24)},
            ],
        )
    purge = PurgeExpiredRecords(PgHousekeeping(autocommit(clean_db)), FrozenClock(now))
    assert await purge() == 3
    assert await purge() == 0
    async with clean_db.connect() as connection:
        assert (await connection.execute(select(auth_nonces.c.nonce))).scalars().all() == ["live"]
        assert (await connection.execute(select(throttle_counters.c.subject))).scalars().all() == ["live"]
        assert (await connection.execute(select(idempotency_keys.c.key))).scalars().all() == ["live"]
