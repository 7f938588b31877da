"""Idempotency keys on PostgreSQL (RELIABILITY M8): concurrent requests with one key execute once and the others
replay the first response byte for byte; another body under the same key is a mismatch."""

import asyncio
import uuid

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.idempotency import PgIdempotencyStore
from adapters.postgres.tables import ledger_entries
from adapters.postgres.wallet_ledger import PgWalletLedger
from application.ports.persistence import ClaimOutcome, IdempotencyClaim, Posting
from domain.credits import Credits
from domain.wallet import EntryKind
from tests.support.audit import ledger_violations
from tests.support.money import balance_of, funded_user

SCOPE = "admin:balance"


def _session(engine: AsyncEngine) -> AsyncSession:
    return async_sessionmaker(engine, expire_on_commit=False)()


async def _adjust_once(engine: AsyncEngine, user_id: uuid.UUID, key: str, fingerprint: str) -> IdempotencyClaim:
    """What the admin balance route does: claim, and only when claimed post, store the response and commit."""
    async with _session(engine) as session:
        store = PgIdempotencyStore(session)
        claim = await store.claim(SCOPE, key, fingerprint)
        if claim.outcome is not ClaimOutcome.CLAIMED:
            return claim
        entry = await PgWalletLedger(session).post(
            Posting(entry_id=uuid.uuid4(), user_id=user_id, kind=EntryKind.ADMIN_ADJUSTMENT, amount=Credits(7))
        )
        response = msgspec.json.encode({"entry": entry.id, "balance": str(entry.balance_after)})
        await store.save_response(SCOPE, key, response)
        await session.commit()
        return IdempotencyClaim(ClaimOutcome.CLAIMED, response)


async def _ledger_rows(engine: AsyncEngine, user_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(ledger_entries).where(ledger_entries.c.user_id == user_id)
        )
    return int(count or 0)


async def test_concurrent_requests_with_one_key_execute_once_and_replay_the_same_bytes(clean_db: AsyncEngine) -> None:
    user_id = await funded_user(clean_db, 0)
    claims = await asyncio.gather(*(_adjust_once(clean_db, user_id, "key-1", "body-a") for _ in range(20)))
    winners = [c for c in claims if c.outcome is ClaimOutcome.CLAIMED]
    replays = [c for c in claims if c.outcome is ClaimOutcome.REPLAY]
    assert len(winners) == 1
    assert len(replays) == 19
    assert {c.response for c in replays} == {winners[0].response}
    assert await _ledger_rows(clean_db, user_id) == 1
    assert await balance_of(clean_db, user_id) == 7
    assert await ledger_violations(clean_db) == []


async def test_the_same_key_with_another_body_is_a_mismatch(clean_db: AsyncEngine) -> None:
    user_id = await funded_user(clean_db, 0)
    await _adjust_once(clean_db, user_id, "key-1", "body-a")
    again = await _adjust_once(clean_db, user_id, "key-1", "body-b")
    assert again == IdempotencyClaim(ClaimOutcome.MISMATCH)
    assert await _ledger_rows(clean_db, user_id) == 1


async def test_keys_are_independent_across_scopes(clean_db: AsyncEngine) -> None:
    async with _session(clean_db) as session:
        store = PgIdempotencyStore(session)
        first = await store.claim("admin:one", "key-1", "body")
        second = await store.claim("admin:two", "key-1", "body")
    assert first.outcome is second.outcome is ClaimOutcome.CLAIMED


async def test_a_claim_committed_without_a_response_is_never_replayed(clean_db: AsyncEngine) -> None:
    async with _session(clean_db) as session:
        await PgIdempotencyStore(session).claim(SCOPE, "key-1", "body")
        await session.commit()
    async with _session(clean_db) as session:
        again = await PgIdempotencyStore(session).claim(SCOPE, "key-1", "body")
    assert again == IdempotencyClaim(ClaimOutcome.MISMATCH)


async def test_a_claim_waits_for_the_first_holder_and_takes_the_key_when_it_rolls_back(clean_db: AsyncEngine) -> None:
    async with _session(clean_db) as first, _session(clean_db) as second:
        assert (await PgIdempotencyStore(first).claim(SCOPE, "key-1", "body")).outcome is ClaimOutcome.CLAIMED
        waiting = asyncio.create_task(PgIdempotencyStore(second).claim(SCOPE, "key-1", "body"))
        await _until_a_session_waits_on_a_lock(clean_db)
        assert not waiting.done()
        await first.rollback()
        assert (await waiting).outcome is ClaimOutcome.CLAIMED


async def _until_a_session_waits_on_a_lock(engine: AsyncEngine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(10):
        while True:
            async with engine.connect() as connection:
                if await connection.scalar(query):
                    return
            await asyncio.sleep(0.01)
