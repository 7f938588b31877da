"""Both ways to PostgreSQL (the SQLAlchemy engine and the money path's asyncpg pool) raise the application's errors
for a database that cannot take the work, or for a text it cannot store; any other database error is a bug."""

import socket
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import create_engine, create_session_factory
from adapters.postgres.statements import StatementPool
from domain.errors import InvalidInput, StorageUnavailable

NUL = "a\x00b"


@pytest.fixture
async def bounded(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, timeout_seconds=0.3)
    yield engine
    await engine.dispose()


async def test_a_pool_with_no_connection_free_in_time_is_unavailable(bounded: AsyncEngine) -> None:
    async with bounded.connect() as held:
        await held.execute(text("SELECT 1"))
        with pytest.raises(StorageUnavailable):
            async with bounded.connect() as second:
                await second.execute(text("SELECT 1"))


async def test_a_server_that_refuses_the_connection_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(f"postgresql://nobody@127.0.0.1:{port}/none", pool_size=1, max_overflow=0, timeout_seconds=1)
    try:
        with pytest.raises(StorageUnavailable) as raised:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert isinstance(raised.value.__cause__, OSError)
    finally:
        await engine.dispose()


async def test_a_statement_past_its_bound_is_unavailable_and_the_pool_serves_the_next_one(
    bounded: AsyncEngine,
) -> None:
    session = create_session_factory(bounded)()
    with pytest.raises(StorageUnavailable):
        await session.execute(text("SELECT pg_sleep(2)"))
    await session.close()
    async with bounded.connect() as connection:
        assert await connection.scalar(text("SELECT 1")) == 1


async def test_a_text_with_nul_is_invalid_input_of_the_body(bounded: AsyncEngine, statements: StatementPool) -> None:
    async with create_session_factory(bounded)() as session:
        with pytest.raises(InvalidInput) as through_sqlalchemy:
            await session.execute(text("SELECT CAST(:value AS text)"), {"value": NUL})
    with pytest.raises(InvalidInput) as through_asyncpg:
        await statements.fetchrow("SELECT $1::text", NUL)
    for raised in (through_sqlalchemy, through_asyncpg):
        assert (raised.value.code, raised.value.field) == ("validation_error", "body")


async def test_any_other_database_error_is_left_as_it_is(bounded: AsyncEngine) -> None:
    async with bounded.connect() as connection:
        with pytest.raises(DBAPIError, match="division by zero"):
            await connection.execute(text("SELECT 1 / 0"))
