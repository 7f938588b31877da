"""Per-process caches kept exact by LISTEN/NOTIFY: every change of a cached row, by anyone, drops it at once; while
the feed is not listening every read goes to the database; a read that raced a change is not kept."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.change_feed import ChangeFeed, ReadThroughCache

WAIT_SECONDS = 5


class Reads:
    """A loader that counts its database reads of `models.description`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.count = 0

    def of(self, model_id: str) -> Callable[[], Awaitable[str | None]]:
        async def load() -> str | None:
            self.count += 1
            async with self._engine.connect() as connection:
                query = text("SELECT description FROM models WHERE id = :id")
                return await connection.scalar(query, {"id": model_id})

        return load


@contextlib.asynccontextmanager
async def _listening(database_url: str | None) -> AsyncIterator[tuple[ChangeFeed, ReadThroughCache[str]]]:
    feed = ChangeFeed(database_url, timeout_seconds=2)
    cache: ReadThroughCache[str] = ReadThroughCache(feed, "models")
    task = asyncio.create_task(feed.run())
    try:
        if database_url is not None:
            await _until(lambda: feed.live)
        yield feed, cache
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.005)


async def _set_description(engine: AsyncEngine, model_id: str, description: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE models SET description = :d WHERE id = :id"), {"d": description, "id": model_id}
        )


@pytest.fixture
def reads(clean_db: AsyncEngine) -> Reads:
    return Reads(clean_db)


async def test_a_cached_row_is_read_once_until_someone_changes_it(
    database_url: str, clean_db: AsyncEngine, reads: Reads
) -> None:
    async with _listening(database_url) as (_, cache):
        version = cache.version
        await _set_description(clean_db, "dr14", "before")
        await _until(lambda: cache.version > version)
        assert [await cache.get(("dr14",), reads.of("dr14")) for _ in range(3)] == ["before"] * 3
        assert reads.count == 1
        await _set_description(clean_db, "dr14", "after")
        await _until(lambda: ("dr14",) not in cache)
        assert await cache.get(("dr14",), reads.of("dr14")) == "after"
        assert reads.count == 2


async def test_a_truncate_drops_every_key(database_url: str, clean_db: AsyncEngine, reads: Reads) -> None:
    async with _listening(database_url) as (_, cache):
        assert await cache.get(("dr14",), reads.of("dr14")) is not None
        async with clean_db.begin() as connection:
            await connection.execute(text("TRUNCATE models CASCADE"))
        await _until(lambda: not cache)
        assert await cache.get(("dr14",), reads.of("dr14")) is None


async def test_absent_rows_are_not_cached(database_url: str, reads: Reads) -> None:
    async with _listening(database_url) as (_, cache):
        for _ in range(3):
            assert await cache.get(("nope",), reads.of("nope")) is None
        assert reads.count == 3


async def test_without_a_feed_every_read_goes_to_the_database(reads: Reads) -> None:
    async with _listening(None) as (feed, cache):
        for _ in range(3):
            assert await cache.get(("dr14",), reads.of("dr14")) is not None
        assert (feed.live, reads.count) == (False, 3)


async def test_a_read_that_raced_a_change_is_not_kept(database_url: str, clean_db: AsyncEngine, reads: Reads) -> None:
    async with _listening(database_url) as (_, cache):

        async def slow_stale_read() -> str | None:
            value = await reads.of("dr14")()
            await _set_description(clean_db, "dr14", "changed meanwhile")
            await _until(lambda: cache.version > version_before)
            return value

        version_before = cache.version
        assert await cache.get(("dr14",), slow_stale_read) != "changed meanwhile"
        assert await cache.get(("dr14",), reads.of("dr14")) == "changed meanwhile"


async def test_a_lost_connection_bypasses_and_forgets_until_it_listens_again(
    database_url: str, clean_db: AsyncEngine, reads: Reads
) -> None:
    async with _listening(database_url) as (feed, cache):
        await cache.get(("dr14",), reads.of("dr14"))
        async with clean_db.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": "creditgate-change-feed"},
            )
        await _until(lambda: not feed.live)
        assert not cache
        await _until(lambda: feed.live)
        await cache.get(("dr14",), reads.of("dr14"))
        await cache.get(("dr14",), reads.of("dr14"))
        assert reads.count == 2
