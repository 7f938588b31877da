"""The background sweep: settles generations abandoned by a crashed instance, and purges expired bookkeeping."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from dishka import AsyncContainer

from application.generations.reaper import ReapExpiredGenerations

log = structlog.get_logger(__name__)


@asynccontextmanager
async def reaper_running(container: AsyncContainer, interval_seconds: float) -> AsyncIterator[None]:
    task = asyncio.create_task(_sweep_forever(container, interval_seconds), name="generation-reaper")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _sweep_forever(container: AsyncContainer, interval_seconds: float) -> None:
    reap = await container.get(ReapExpiredGenerations)
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            if reaped := await reap():
                log.warning("generations_reaped", count=reaped)
        except Exception:
            log.exception("reaper_failed")
