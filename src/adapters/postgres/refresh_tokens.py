import hashlib
import secrets
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.tables import refresh_tokens
from application.ports.persistence import RefreshGrant, RefreshTokenStore, Rotation, RotationOutcome


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class PgRefreshTokenStore(RefreshTokenStore):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def issue(self, grant: RefreshGrant, *, now: datetime, expires_at: datetime) -> str:
        token = secrets.token_urlsafe(32)
        await self._session.execute(
            insert(refresh_tokens).values(
                token_hash=_digest(token),
                family_id=grant.family_id,
                user_id=grant.user_id,
                api_key=grant.api_key,
                issued_at=now,
                expires_at=expires_at,
            )
        )
        return token

    async def use(self, token: str, now: datetime) -> Rotation:
        columns = (refresh_tokens.c.user_id, refresh_tokens.c.family_id, refresh_tokens.c.api_key)
        digest = _digest(token)
        used = (
            await self._session.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == digest,
                    refresh_tokens.c.used_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                    refresh_tokens.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(*columns)
            )
        ).one_or_none()
        if used is not None:
            return Rotation(RotationOutcome.ROTATED, RefreshGrant(*used))
        # The UPDATE above waited for a concurrent winner to commit, so a consumed token is seen here; consumed
        # is reuse even once its family is revoked (every racer but the winner is told, not only the first).
        seen = (
            await self._session.execute(
                select(*columns).where(refresh_tokens.c.token_hash == digest, refresh_tokens.c.used_at.is_not(None))
            )
        ).one_or_none()
        if seen is not None:
            return Rotation(RotationOutcome.REUSED, RefreshGrant(*seen))
        return Rotation(RotationOutcome.INVALID)

    async def revoke_family(self, family_id: UUID, now: datetime) -> None:
        await self._revoke(refresh_tokens.c.family_id == family_id, now)

    async def revoke_user(self, user_id: UUID, now: datetime) -> None:
        await self._revoke(refresh_tokens.c.user_id == user_id, now)

    async def revoke_key(self, api_key: str, now: datetime) -> None:
        await self._revoke(refresh_tokens.c.api_key == api_key, now)

    async def _revoke(self, which: ColumnElement[bool], now: datetime) -> None:
        await self._session.execute(
            update(refresh_tokens).where(which, refresh_tokens.c.revoked_at.is_(None)).values(revoked_at=now)
        )

    async def family_of(self, token: str) -> UUID | None:
        return await self._session.scalar(
            select(refresh_tokens.c.family_id).where(refresh_tokens.c.token_hash == _digest(token))
        )
