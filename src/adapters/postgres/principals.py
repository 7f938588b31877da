from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select

from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import api_keys, users
from application.ports.security import PrincipalReader, Standing
from domain.api_key import KeyStatus, subscription_status
from domain.user import Principal, Role


class PgPrincipalReader(PrincipalReader):
    """On the path of every authenticated request: one indexed read (joined with the key for key tokens)."""

    def __init__(self, engine: AutocommitEngine) -> None:
        self._engine = engine

    async def standing(self, user_id: UUID, api_key: str | None, now: datetime) -> Standing | None:
        if api_key is None:
            query = select(users.c.role, users.c.sessions_valid_after.label("valid_after"))
        else:
            query = select(
                users.c.role,
                func.greatest(users.c.sessions_valid_after, api_keys.c.sessions_valid_after).label("valid_after"),
                api_keys.c.status,
                api_keys.c.expires_at,
            ).select_from(users.join(api_keys, (api_keys.c.user_id == users.c.id) & (api_keys.c.api_key == api_key)))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query.where(users.c.id == user_id, users.c.is_active))).one_or_none()
        if row is None:
            return None
        found = row._mapping
        subscription = (
            None if api_key is None else subscription_status(KeyStatus(found["status"]), found["expires_at"], now)
        )
        return Standing(
            principal=Principal(user_id=user_id, role=Role(found["role"]), api_key=api_key),
            subscription=subscription,
            sessions_valid_after=found["valid_after"],
        )
