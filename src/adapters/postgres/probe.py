import asyncio

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports.health import DatabaseProbe

log = structlog.get_logger(__name__)


class PgDatabaseProbe(DatabaseProbe):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ping(self, timeout_seconds: float) -> bool:
        try:
            async with asyncio.timeout(timeout_seconds), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            log.warning("database_unreachable", error=type(exc).__name__)
            return False
        return True
