from application.ports.catalog import Catalog
from application.ports.persistence import Page, PageRequest
from domain.catalog import CatalogModel, ModelExists
from tests.support.fakes.state import FakeDatabase, paged


class FakeCatalog(Catalog):
    """The catalog and the generation path's ModelLookup in one (the real lookup is a cache kept exact)."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def get(self, model_id: str) -> CatalogModel | None:
        return self._db.tables.models.get(model_id)

    async def list(self, page: PageRequest, *, enabled_only: bool) -> Page[CatalogModel]:
        models = [m for m in self._db.tables.models.values() if m.enabled or not enabled_only]
        return paged(models, page, lambda m: m.id)

    async def add(self, model: CatalogModel) -> None:
        models = self._db.tables.models
        if model.id in models:
            raise ModelExists
        models[model.id] = model

    async def update(self, model: CatalogModel) -> bool:
        models = self._db.tables.models
        if model.id not in models:
            return False
        models[model.id] = model
        return True

    async def delete(self, model_id: str) -> bool:
        return self._db.tables.models.pop(model_id, None) is not None
