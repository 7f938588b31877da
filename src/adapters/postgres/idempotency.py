from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import idempotency_keys
from application.ports.persistence import ClaimOutcome, IdempotencyClaim, IdempotencyStore


class PgIdempotencyStore(IdempotencyStore):
    """A concurrent claim of the same key blocks on the primary key until the first transaction ends."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, scope: str, key: str, fingerprint: str) -> IdempotencyClaim:
        claimed = await self._session.scalar(
            insert(idempotency_keys)
            .values(scope=scope, key=key, fingerprint=fingerprint)
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.scope)
        )
        if claimed is not None:
            return IdempotencyClaim(ClaimOutcome.CLAIMED)
        stored = (
            await self._session.execute(
                select(idempotency_keys.c.fingerprint, idempotency_keys.c.response).where(
                    idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
                )
            )
        ).one()
        if stored.fingerprint != fingerprint or stored.response is None:
            return IdempotencyClaim(ClaimOutcome.MISMATCH)
        return IdempotencyClaim(ClaimOutcome.REPLAY, bytes(stored.response))

    async def save_response(self, scope: str, key: str, response: bytes) -> None:
        await self._session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
            .values(response=response)
        )
