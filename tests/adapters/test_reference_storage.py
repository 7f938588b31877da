"""The per-account quota of stored reference bytes on PostgreSQL: atomic under concurrent uploads, counted over
the references that exist (a purge frees their bytes with no bookkeeping)."""

import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from adapters.postgres.comparison import PgReferences
from application.ports.comparison import TextReference
from tests.support.money import funded_user, key_row

QUOTA = 10_000


async def _upload(engine: AsyncEngine, user_id: uuid.UUID, api_key: str, content: str, quota: int = QUOTA) -> bool:
    """The request's transaction stays open a while after the insert, as a slow request's would."""
    reference = TextReference(uuid.uuid4(), user_id, api_key, None, content, datetime.now(UTC))
    async with async_sessionmaker(engine)() as session:
        stored = await PgReferences(session).add(reference, quota)
        await asyncio.sleep(0.05)
        await session.commit()
    return stored


async def _stored_bytes(engine: AsyncEngine, user_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        query = text("SELECT COALESCE(SUM(octet_length(content)), 0) FROM text_references WHERE user_id = :u")
        return int(await connection.scalar(query, {"u": user_id}))


async def test_concurrent_uploads_cannot_pass_the_quota(clean_db: AsyncEngine) -> None:
    user_id = await funded_user(clean_db, 0)
    api_key = await key_row(clean_db, user_id)
    results = await asyncio.gather(*(_upload(clean_db, user_id, api_key, "é" * 1000) for _ in range(8)))
    assert results.count(True) == 5  # 2000 bytes each: the quota holds five
    assert await _stored_bytes(clean_db, user_id) == 10_000


async def test_other_accounts_and_deleted_references_do_not_count(clean_db: AsyncEngine) -> None:
    user_id, other_id = await funded_user(clean_db, 0), await funded_user(clean_db, 0)
    api_key, other_key = await key_row(clean_db, user_id), await key_row(clean_db, other_id)
    assert await _upload(clean_db, user_id, api_key, "x" * QUOTA)
    assert await _upload(clean_db, other_id, other_key, "x" * QUOTA)
    assert not await _upload(clean_db, user_id, api_key, "x")
    async with clean_db.begin() as connection:
        await connection.execute(text("DELETE FROM text_references WHERE user_id = :u"), {"u": user_id})
    assert await _upload(clean_db, user_id, api_key, "x" * QUOTA)
    assert await _upload(clean_db, user_id, api_key, "x" * QUOTA, quota=0)  # 0: no limit
