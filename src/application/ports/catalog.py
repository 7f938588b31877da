from abc import abstractmethod
from typing import Protocol

from application.ports.persistence import Page, PageRequest
from domain.catalog import CatalogModel


class ModelLookup(Protocol):
    @abstractmethod
    async def get(self, model_id: str) -> CatalogModel | None:
        """On the path of every generation: served from a per-process cache kept exact by change notices, and
        needing no request's session."""


class Catalog(ModelLookup, Protocol):
    @abstractmethod
    async def list(self, page: PageRequest, *, enabled_only: bool) -> Page[CatalogModel]:
        """Ordered by id."""

    @abstractmethod
    async def add(self, model: CatalogModel) -> None:
        """MUST raise ModelExists when the id is taken, and leave the transaction usable."""

    @abstractmethod
    async def update(self, model: CatalogModel) -> bool:
        """Replace every field but the id; False when no model has that id."""

    @abstractmethod
    async def delete(self, model_id: str) -> bool:
        """False when no model has that id."""
