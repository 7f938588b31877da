from sqlalchemy.ext.asyncio import AsyncSession

from application.ports.persistence import UnitOfWork


class SqlaUnitOfWork(UnitOfWork):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def commit(self) -> None:
        await self._session.commit()

    async def rollback(self) -> None:
        await self._session.rollback()
