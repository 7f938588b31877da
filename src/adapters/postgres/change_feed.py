"""Per-process read-through caches kept exact across instances by PostgreSQL's LISTEN/NOTIFY.

Triggers announce `<table>:<key>` (or `<table>`: every key) on `creditgate_changes` after every change that a
cache depends on (migration 0009). Each process holds one LISTEN connection; a notice drops that key from the
table's cache. While that connection is down (not yet up, lost, or never possible: PgBouncer in transaction mode
cannot LISTEN), every read goes to the database, and everything cached is dropped when it comes back: a cache never
answers from a time it could have missed a notice. A read that raced a notice is not stored (the cache's version
moved meanwhile).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar

import asyncpg
import structlog

from adapters.postgres.engine import driver_dsn

CHANNEL = "creditgate_changes"
RECONNECT_DELAY_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
MAX_ENTRIES = 4096

V = TypeVar("V")

log = structlog.get_logger(__name__)


class ReadThroughCache(Generic[V]):
    """Values keyed by the keys of the rows they were read from (`tables[i]` holds the row of `key[i]`): a change of
    any of those rows drops the value. Absent rows are not cached (ids come from clients: no unbounded growth)."""

    def __init__(self, feed: "ChangeFeed", *tables: str) -> None:
        self._feed = feed
        self._entries: dict[tuple[str, ...], V] = {}
        self._version = 0
        for position, table in enumerate(tables):
            feed.follow(table, partial(self._drop, position))

    async def get(self, key: tuple[str, ...], load: Callable[[], Awaitable[V | None]]) -> V | None:
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

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def version(self) -> int:
        """Moves on every drop: a read that started at another version may be stale."""
        return self._version

    def _drop(self, position: int, row_key: str | None) -> None:
        """What was read from that row (changes are rare: a scan), or everything (None)."""
        self._version += 1
        if row_key is None:
            self._entries.clear()
            return
        for key in [key for key in self._entries if key[position] == row_key]:
            del self._entries[key]


class ChangeFeed:
    def __init__(self, database_url: str | None, timeout_seconds: float) -> None:
        """`database_url` None: no LISTEN is possible, caches stay bypassed."""
        self._dsn = None if database_url is None else driver_dsn(database_url)
        self._timeout = timeout_seconds
        self._followers: dict[str, list[Callable[[str | None], None]]] = {}
        self.live = False

    def follow(self, table: str, on_change: Callable[[str | None], None]) -> None:
        """`on_change(key)` after a change of that row, `on_change(None)` when any row may have changed."""
        self._followers.setdefault(table, []).append(on_change)

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
            self._forget_all()  # anything cached before this LISTEN may have missed a notice
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
        self._forget_all()

    def _forget_all(self) -> None:
        for followers in self._followers.values():
            for on_change in followers:
                on_change(None)

    def _on_notice(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        table, keyed, key = str(payload).partition(":")
        for on_change in self._followers.get(table, ()):
            on_change(key if keyed else None)
