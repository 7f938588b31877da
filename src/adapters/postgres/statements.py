"""The money path's statements on asyncpg directly: its own small pool, statements prepared once per connection.

Measured here (uvloop, loopback, one short UPDATE): through SQLAlchemy's async engine ~330 µs of CPU per
statement; on an asyncpg pool ~150 µs, of which ~90 µs is the reset query asyncpg runs on every release; with no
reset ~70 µs. Nothing here leaves session state behind (each statement commits on its own, transactions are
closed by their context), so a released connection needs no reset.

Errors are translated as the SQLAlchemy engine's are (adapters.postgres.storage_errors); a statement that
outlived its bound, or whose caller gave up, has its connection terminated at once, as that engine does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from adapters.postgres.engine import driver_dsn, session_settings
from adapters.postgres.storage_errors import translated

if TYPE_CHECKING:  # generic in the stubs only
    Connection = PoolConnectionProxy[asyncpg.Record]
else:
    Connection = PoolConnectionProxy


async def _nothing_to_reset(_connection: object) -> None:
    return None


class StatementPool:
    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds

    @classmethod
    @asynccontextmanager
    async def opened(
        cls, database_url: str, *, size: int, timeout_seconds: float, pgbouncer: bool = False
    ) -> AsyncIterator[StatementPool]:
        """Connects lazily; `pgbouncer`: no prepared statement outlives its statement (transaction pooling)."""
        pool: asyncpg.Pool[asyncpg.Record] = asyncpg.create_pool(
            driver_dsn(database_url),
            min_size=0,
            max_size=size,
            timeout=timeout_seconds,
            command_timeout=timeout_seconds,
            statement_cache_size=0 if pgbouncer else 100,
            server_settings=session_settings("creditgate-money", timeout_seconds, pgbouncer=pgbouncer),
            reset=_nothing_to_reset,
        )
        await pool
        try:
            yield cls(pool, timeout_seconds)
        finally:
            try:
                await asyncio.wait_for(pool.close(), timeout_seconds)
            except TimeoutError:
                pool.terminate()

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as connection:
            return await connection.fetchrow(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        async with self.connection() as connection:
            await connection.execute(sql, *args)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection; with `async with connection.transaction()` for several statements."""
        with translated():
            async with self._pool.acquire(timeout=self._timeout) as connection:
                try:
                    yield connection
                except (TimeoutError, asyncio.CancelledError):
                    with suppress(Exception):
                        connection.terminate()
                    raise
