from typing import Any, ClassVar

import msgspec

from application.ports.health import DatabaseProbe

READINESS_TIMEOUT_SECONDS = 2.0


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    database: bool

    example: ClassVar[dict[str, Any]] = {"ready": True, "database": True}


class CheckReadiness:
    """Ready when every dependency a request needs answers: today, PostgreSQL within 2 s."""

    def __init__(self, database: DatabaseProbe) -> None:
        self._database = database

    async def __call__(self) -> Readiness:
        database = await self._database.ping(READINESS_TIMEOUT_SECONDS)
        return Readiness(ready=database, database=database)
