from uuid import UUID

from sqlalchemy import select

from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import users
from application.ports.security import PrincipalReader
from domain.user import Principal, Role


class PgPrincipalReader(PrincipalReader):
    """On the path of every authenticated request: one primary-key read."""

    def __init__(self, engine: AutocommitEngine) -> None:
        self._engine = engine

    async def principal(self, user_id: UUID, api_key: str | None) -> Principal | None:
        async with self._engine.connect() as connection:
            role = await connection.scalar(select(users.c.role).where(users.c.id == user_id, users.c.is_active))
        if role is None or api_key is not None:
            return None
        return Principal(user_id=user_id, role=Role(role))
