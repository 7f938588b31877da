"""Per-process read-through caches kept exact across instances by PostgreSQL's LISTEN/NOTIFY.

Triggers announce `<table>:<key>` (or `<table>`: every key) on `creditgate_changes` after every change that a
cache depends on (migration 0006). Each process holds one LISTEN connection; a notice drops that key from the
table's cache. While that connection is down (not yet up, lost, or never possible: PgBouncer in transaction mode
cannot LISTEN), every read goes to the database, and everything cached is dropped when it comes back: a cache never
answers from a time it could have missed a notice. A read that raced a notice is not stored (the cache's version
moved meanwhile).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg
import structlog
from sqlalchemy.engine import make_url

CHANNEL = "creditgate_changes"
RECONNECT_DELAY_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
MAX_ENTRIES = 4096

V = TypeVar("V")

log = structlog.get_logger(__name__)


class ReadThroughCache(Generic[V]):
    """Values by key for one table; absent rows are not cached (ids come from clients: no unbounded growth)."""

    def __init__(self, feed: "ChangeFeed", table: str) -> None:
        self._feed = feed
        self._entries: dict[str, V] = {}
        self._version = 0
        feed.follow(table, self)

    async def get(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        if not self._feed.live:
            return await load()
        if (hit := self._entries.get(key)) is not None:
            return hit
        version = self._version
        value = await load()
        if value is not None and version == self._version and self._feed.live:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value
        return value

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def version(self) -> int:
        """Moves on every drop: a read that started at another version may be stale."""
        return self._version

    def drop(self, key: str | None) -> None:
        """One key, or everything (None)."""
        self._version += 1
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


def listen_dsn(database_url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver suffix)."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeFeed:
    def __init__(self, database_url: str | None, timeout_seconds: float) -> None:
        """`database_url` None: no LISTEN is possible, caches stay bypassed."""
        self._dsn = None if database_url is None else listen_dsn(database_url)
        self._timeout = timeout_seconds
        self._caches: dict[str, ReadThroughCache[Any]] = {}
        self.live = False

    def follow(self, table: str, cache: ReadThroughCache[Any]) -> None:
        self._caches[table] = cache

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a lost connection."""
        if self._dsn is None:
            return
        while True:
            try:
                await self._listen_once(self._dsn)
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                log.warning("change_feed_lost", error=type(error).__name__)
            self._go_dark()
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    async def _listen_once(self, dsn: str) -> None:
        connection = await asyncpg.connect(
            dsn, timeout=self._timeout, server_settings={"application_name": "creditgate-change-feed"}
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, self._on_notice)
            for cache in self._caches.values():
                cache.drop(None)  # anything cached before this LISTEN may have missed a notice
            self.live = True
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), HEARTBEAT_SECONDS)
                if not lost.is_set():  # a silent connection (a stalled server, a dropped route) is a lost one
                    await connection.fetchval("SELECT 1", timeout=self._timeout)
        finally:
            self._go_dark()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self._timeout)

    def _go_dark(self) -> None:
        self.live = False
        for cache in self._caches.values():
            cache.drop(None)

    def _on_notice(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        table, keyed, key = str(payload).partition(":")
        if (cache := self._caches.get(table)) is not None:
            cache.drop(key if keyed else None)
