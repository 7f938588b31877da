from sqlalchemy import ColumnElement, Delete, Table, and_, delete, exists, or_, select, tuple_
from sqlalchemy.orm import aliased

from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import (
    api_keys,
    auth_nonces,
    idempotency_keys,
    refresh_tokens,
    text_references,
    throttle_counters,
)
from application.ports.housekeeping import Housekeeping, PurgeCutoffs


def _batch(table: Table, condition: ColumnElement[bool], limit: int) -> Delete:
    """At most `limit` rows, picked by primary key: a short statement and short locks, whatever the backlog."""
    key = tuple_(*table.primary_key.columns)
    return delete(table).where(key.in_(select(*table.primary_key.columns).where(condition).limit(limit)))


def _statements(cutoffs: PurgeCutoffs, limit: int) -> tuple[Delete, ...]:
    later = aliased(refresh_tokens)
    family_lives = exists().where(later.c.family_id == refresh_tokens.c.family_id, later.c.expires_at >= cutoffs.now)
    key_gone = exists().where(
        api_keys.c.api_key == text_references.c.api_key,
        or_(api_keys.c.status == "revoked", api_keys.c.expires_at < cutoffs.now),
    )
    return (
        _batch(auth_nonces, auth_nonces.c.expires_at < cutoffs.now, limit),
        _batch(throttle_counters, throttle_counters.c.window_start < cutoffs.windows_before, limit),
        _batch(idempotency_keys, idempotency_keys.c.created_at < cutoffs.idempotency_before, limit),
        _batch(refresh_tokens, and_(refresh_tokens.c.expires_at < cutoffs.now, ~family_lives), limit),
        _batch(text_references, or_(text_references.c.created_at < cutoffs.references_before, key_gone), limit),
    )


class PgHousekeeping(Housekeeping):
    def __init__(self, engine: AutocommitEngine) -> None:
        self._engine = engine

    async def purge(self, cutoffs: PurgeCutoffs, limit: int) -> int:
        async with self._engine.begin() as connection:
            return sum([(await connection.execute(statement)).rowcount for statement in _statements(cutoffs, limit)])
