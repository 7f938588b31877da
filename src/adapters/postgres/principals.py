from uuid import UUID

from sqlalchemy import select

from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import api_keys, users
from application.ports.security import PrincipalReader
from domain.user import Principal, Role


class PgPrincipalReader(PrincipalReader):
    """On the path of every authenticated request: one indexed read (joined with the key for key tokens)."""

    def __init__(self, engine: AutocommitEngine) -> None:
        self._engine = engine

    async def principal(self, user_id: UUID, api_key: str | None) -> Principal | None:
        query = select(users.c.role).where(users.c.id == user_id, users.c.is_active)
        if api_key is not None:
            query = query.join(api_keys, api_keys.c.user_id == users.c.id).where(
                api_keys.c.api_key == api_key, api_keys.c.status != "revoked"
            )
        async with self._engine.connect() as connection:
            role = await connection.scalar(query)
        return None if role is None else Principal(user_id=user_id, role=Role(role), api_key=api_key)
