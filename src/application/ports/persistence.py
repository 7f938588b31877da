from abc import abstractmethod
from typing import Protocol


class UnitOfWork(Protocol):
    """The request's transaction. Repositories never commit; whatever is not committed rolls back."""

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def rollback(self) -> None: ...
