"""The background sweeps of every instance: settle generations abandoned by a crashed instance (every
REAPER_INTERVAL_SECONDS), and purge expired bookkeeping (every HOUSEKEEPING_INTERVAL_SECONDS)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from dishka import AsyncContainer

from application.generations.housekeeping import PurgeExpiredRecords
from application.generations.reaper import ReapExpiredGenerations
from entrypoints.settings import HousekeepingSettings

log = structlog.get_logger(__name__)


@asynccontextmanager
async def sweeps_running(container: AsyncContainer, housekeeping: HousekeepingSettings) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(_reap_forever(container, housekeeping.reaper_interval_seconds), name="generation-reaper"),
        asyncio.create_task(_purge_forever(container, housekeeping.interval_seconds), name="housekeeping"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _reap_forever(container: AsyncContainer, interval_seconds: float) -> None:
    reap = await container.get(ReapExpiredGenerations)
    await _every(interval_seconds, reap, "generations_reaped", "reaper_failed", log.warning)


async def _purge_forever(container: AsyncContainer, interval_seconds: float) -> None:
    purge = await container.get(PurgeExpiredRecords)
    await _every(interval_seconds, purge, "records_purged", "housekeeping_failed", log.info)


async def _every(
    interval_seconds: float,
    sweep: Callable[[], Awaitable[int]],
    done: str,
    failed: str,
    report: Callable[..., object],
) -> None:
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            if count := await sweep():
                report(done, count=count)
        except Exception:
            log.exception(failed)
