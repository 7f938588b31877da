from datetime import datetime

from sqlalchemy import delete

from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import auth_nonces, idempotency_keys, throttle_counters
from application.ports.housekeeping import Housekeeping


class PgHousekeeping(Housekeeping):
    def __init__(self, engine: AutocommitEngine) -> None:
        self._engine = engine

    async def purge(self, *, nonces_before: datetime, windows_before: datetime, idempotency_before: datetime) -> int:
        statements = (
            delete(auth_nonces).where(auth_nonces.c.expires_at < nonces_before),
            delete(throttle_counters).where(throttle_counters.c.window_start < windows_before),
            delete(idempotency_keys).where(idempotency_keys.c.created_at < idempotency_before),
        )
        async with self._engine.connect() as connection:
            return sum([(await connection.execute(statement)).rowcount for statement in statements])
