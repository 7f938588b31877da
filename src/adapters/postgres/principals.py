from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import RowMapping, func, select

from adapters.postgres.change_feed import ChangeFeed, ReadThroughCache
from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import api_keys, users
from application.ports.security import PrincipalReader, Standing
from domain.api_key import KeyStatus, subscription_status
from domain.user import Principal, Role


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the rows say; the subscription is judged at each request's `now` (a key expires while cached)."""

    role: Role
    valid_after: datetime | None
    key: tuple[KeyStatus, datetime] | None
    """The key's status and expiry, for a key-scoped principal."""


class StandingCache(ReadThroughCache[_Stored]):
    """By (user id, api key or ""): a change of the user's row or of the key's drops it."""

    def __init__(self, feed: ChangeFeed) -> None:
        super().__init__(feed, users.name, api_keys.name)


class PgPrincipalReader(PrincipalReader):
    """On the path of every authenticated request: served from the per-process cache, else one indexed read
    (joined with the key for key tokens)."""

    def __init__(self, engine: AutocommitEngine, cache: StandingCache) -> None:
        self._engine = engine
        self._cache = cache

    async def standing(self, user_id: UUID, api_key: str | None, now: datetime) -> Standing | None:
        stored = await self._cache.get((str(user_id), api_key or ""), lambda: self._read(user_id, api_key))
        if stored is None:
            return None
        subscription = None if stored.key is None else subscription_status(*stored.key, now)
        return Standing(
            principal=Principal(user_id=user_id, role=stored.role, api_key=api_key),
            subscription=subscription,
            sessions_valid_after=stored.valid_after,
        )

    async def _read(self, user_id: UUID, api_key: str | None) -> _Stored | None:
        if api_key is None:
            query = select(users.c.role, users.c.sessions_valid_after.label("valid_after"))
        else:
            query = select(
                users.c.role,
                func.greatest(users.c.sessions_valid_after, api_keys.c.sessions_valid_after).label("valid_after"),
                api_keys.c.status,
                api_keys.c.expires_at,
            ).select_from(users.join(api_keys, (api_keys.c.user_id == users.c.id) & (api_keys.c.api_key == api_key)))
        async with self._engine.begin() as connection:
            row = (await connection.execute(query.where(users.c.id == user_id, users.c.is_active))).one_or_none()
        return None if row is None else _stored(row._mapping, keyed=api_key is not None)


def _stored(found: RowMapping, *, keyed: bool) -> _Stored:
    return _Stored(
        role=Role(found["role"]),
        valid_after=found["valid_after"],
        key=(KeyStatus(found["status"]), found["expires_at"]) if keyed else None,
    )
