from abc import abstractmethod
from typing import Protocol

from application.ports.persistence import Page, PageRequest
from domain.catalog import CatalogModel


class Catalog(Protocol):
    @abstractmethod
    async def get(self, model_id: str) -> CatalogModel | None:
        """On the path of every generation: one primary-key read."""

    @abstractmethod
    async def list(self, page: PageRequest, *, enabled_only: bool) -> Page[CatalogModel]:
        """Ordered by id."""

    @abstractmethod
    async def add(self, model: CatalogModel) -> None:
        """MUST raise ModelExists when the id is taken."""

    @abstractmethod
    async def update(self, model: CatalogModel) -> bool: ...

    @abstractmethod
    async def delete(self, model_id: str) -> bool: ...
