from typing import Any, ClassVar

import msgspec

from application.ports.health import DatabaseProbe

READINESS_TIMEOUT_SECONDS = 1.5


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    database: bool

    example: ClassVar[dict[str, Any]] = {"ready": True, "database": True}


class CheckReadiness:
    """Ready when every dependency a request needs answers: today, PostgreSQL within 1.5 s, so that
    the answer comes within 2 s even when the database is stalled."""

    def __init__(self, database: DatabaseProbe) -> None:
        self._database = database

    async def __call__(self) -> Readiness:
        database = await self._database.ping(READINESS_TIMEOUT_SECONDS)
        return Readiness(ready=database, database=database)
