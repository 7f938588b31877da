"""Refresh tokens on PostgreSQL (RELIABILITY A3): single use under concurrency, reuse detection, family revocation,
expiry, and only the SHA-256 of a token at rest."""

import asyncio
import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.refresh_tokens import PgRefreshTokenStore
from application.ports.persistence import RefreshGrant, Rotation, RotationOutcome
from tests.support.money import funded_user

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(days=30)


def _session(engine: AsyncEngine) -> AsyncSession:
    return async_sessionmaker(engine, expire_on_commit=False)()


async def _grant(engine: AsyncEngine, api_key: str | None = None) -> RefreshGrant:
    return RefreshGrant(user_id=await funded_user(engine, 0), family_id=uuid.uuid4(), api_key=api_key)


async def _issue(engine: AsyncEngine, grant: RefreshGrant, ttl: timedelta = TTL) -> str:
    async with _session(engine) as session:
        token = await PgRefreshTokenStore(session).issue(grant, now=NOW, expires_at=NOW + ttl)
        await session.commit()
    return token


async def _use(engine: AsyncEngine, token: str, now: datetime = NOW) -> Rotation:
    async with _session(engine) as session:
        rotation = await PgRefreshTokenStore(session).use(token, now)
        await session.commit()
    return rotation


async def _revoke(engine: AsyncEngine, family_id: uuid.UUID) -> None:
    async with _session(engine) as session:
        await PgRefreshTokenStore(session).revoke_family(family_id, NOW)
        await session.commit()


async def test_a_token_rotates_once_then_is_reported_reused_with_its_grant(clean_db: AsyncEngine) -> None:
    grant = await _grant(clean_db, api_key="ak_1")
    token = await _issue(clean_db, grant)
    assert await _use(clean_db, token) == Rotation(RotationOutcome.ROTATED, grant)
    assert await _use(clean_db, token) == Rotation(RotationOutcome.REUSED, grant)


async def test_concurrent_uses_of_one_token_rotate_exactly_once(clean_db: AsyncEngine) -> None:
    grant = await _grant(clean_db)
    token = await _issue(clean_db, grant)
    rotations = await asyncio.gather(*(_use(clean_db, token) for _ in range(10)))
    outcomes = [r.outcome for r in rotations]
    assert outcomes.count(RotationOutcome.ROTATED) == 1
    assert outcomes.count(RotationOutcome.REUSED) == 9
    assert {r.grant for r in rotations} == {grant}


async def test_revoking_a_family_kills_its_unused_tokens_and_its_used_ones_stay_reuse(clean_db: AsyncEngine) -> None:
    grant = await _grant(clean_db)
    used, fresh = await _issue(clean_db, grant), await _issue(clean_db, grant)
    other_grant = RefreshGrant(grant.user_id, uuid.uuid4(), None)
    other = await _issue(clean_db, other_grant)
    await _use(clean_db, used)
    await _revoke(clean_db, grant.family_id)
    assert await _use(clean_db, used) == Rotation(RotationOutcome.REUSED, grant)
    assert await _use(clean_db, fresh) == Rotation(RotationOutcome.INVALID)
    assert await _use(clean_db, other) == Rotation(RotationOutcome.ROTATED, other_grant)


async def test_a_token_is_invalid_from_its_expiry_on(clean_db: AsyncEngine) -> None:
    grant = await _grant(clean_db)
    expiring, live = (
        await _issue(clean_db, grant, timedelta(minutes=1)),
        await _issue(clean_db, grant, timedelta(minutes=1)),
    )
    assert await _use(clean_db, expiring, NOW + timedelta(minutes=1)) == Rotation(RotationOutcome.INVALID)
    assert await _use(clean_db, live, NOW + timedelta(seconds=59)) == Rotation(RotationOutcome.ROTATED, grant)


async def test_an_unknown_token_is_invalid_and_has_no_family(clean_db: AsyncEngine) -> None:
    assert await _use(clean_db, "never-issued") == Rotation(RotationOutcome.INVALID)
    async with _session(clean_db) as session:
        assert await PgRefreshTokenStore(session).family_of("never-issued") is None


async def test_family_of_finds_the_family_of_used_and_unused_tokens(clean_db: AsyncEngine) -> None:
    grant = await _grant(clean_db)
    used, fresh = await _issue(clean_db, grant), await _issue(clean_db, grant)
    await _use(clean_db, used)
    async with _session(clean_db) as session:
        store = PgRefreshTokenStore(session)
        assert await store.family_of(used) == await store.family_of(fresh) == grant.family_id


async def test_the_database_holds_only_the_sha256_of_a_token(clean_db: AsyncEngine) -> None:
    token = await _issue(clean_db, await _grant(clean_db))
    async with clean_db.connect() as connection:
        row = (await connection.execute(text("SELECT token_hash, t::text AS whole FROM refresh_tokens t"))).one()
    token_bytes = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert bytes(row.token_hash) == hashlib.sha256(token.encode()).digest()
    for secret in (token, token_bytes.hex(), token.encode().hex()):
        assert secret not in row.whole
    assert token_bytes not in bytes(row.token_hash)
