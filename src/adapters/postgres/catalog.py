import dataclasses

from sqlalchemy import RowMapping, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.change_feed import ChangeFeed, ReadThroughCache
from adapters.postgres.cursors import keyset_page
from adapters.postgres.engine import AutocommitEngine
from adapters.postgres.tables import models
from application.ports.catalog import Catalog, ModelLookup
from application.ports.persistence import Page, PageRequest
from domain.catalog import CatalogModel, ModelExists
from domain.credits import Credits
from domain.pricing import Pricing
from domain.routing import Deployment

_COLUMNS = (
    models.c.id,
    models.c.provider,
    models.c.upstream_model,
    models.c.description,
    models.c.unit_tokens,
    models.c.input_credits,
    models.c.output_credits,
    models.c.cached_input_credits,
    models.c.cache_write_credits,
    models.c.max_output_tokens,
    models.c.enabled,
    models.c.deployments,
)


def _model(m: RowMapping) -> CatalogModel:
    return CatalogModel(
        id=m["id"],
        provider=m["provider"],
        upstream_model=m["upstream_model"],
        description=m["description"],
        pricing=Pricing(
            m["unit_tokens"],
            Credits(m["input_credits"]),
            Credits(m["output_credits"]),
            cached_input_credits=_price(m["cached_input_credits"]),
            cache_write_credits=_price(m["cache_write_credits"]),
        ),
        max_output_tokens=m["max_output_tokens"],
        enabled=m["enabled"],
        deployments=tuple(Deployment(**d) for d in m["deployments"] or ()),
    )


def _price(micros: int | None) -> Credits | None:
    return None if micros is None else Credits(micros)


def _micros(price: Credits | None) -> int | None:
    return None if price is None else price.micros


def _values(model: CatalogModel) -> dict[str, object]:
    return {
        "provider": model.provider,
        "upstream_model": model.upstream_model,
        "description": model.description,
        "unit_tokens": model.pricing.unit_tokens,
        "input_credits": model.pricing.input_credits.micros,
        "output_credits": model.pricing.output_credits.micros,
        "cached_input_credits": _micros(model.pricing.cached_input_credits),
        "cache_write_credits": _micros(model.pricing.cache_write_credits),
        "max_output_tokens": model.max_output_tokens,
        "enabled": model.enabled,
        "deployments": [dataclasses.asdict(d) for d in model.deployments],
    }


class ModelCache(ReadThroughCache[CatalogModel]):
    def __init__(self, feed: ChangeFeed) -> None:
        super().__init__(feed, models.name)


class PgModelLookup(ModelLookup):
    def __init__(self, engine: AutocommitEngine, cache: ModelCache) -> None:
        self._engine = engine
        self._cache = cache

    async def get(self, model_id: str) -> CatalogModel | None:
        if "\x00" in model_id:  # PostgreSQL text holds no NUL, so no model has one (and the driver would refuse it)
            return None
        return await self._cache.get((model_id,), lambda: self._read(model_id))

    async def _read(self, model_id: str) -> CatalogModel | None:
        """Outside the request's transaction, so a streaming generation holds no connection."""
        async with self._engine.begin() as connection:
            row = (await connection.execute(select(*_COLUMNS).where(models.c.id == model_id))).one_or_none()
        return None if row is None else _model(row._mapping)


class PgCatalog(Catalog):
    def __init__(self, session: AsyncSession, lookup: PgModelLookup) -> None:
        self._session = session
        self._lookup = lookup

    async def get(self, model_id: str) -> CatalogModel | None:
        return await self._lookup.get(model_id)

    async def list(self, page: PageRequest, *, enabled_only: bool) -> Page[CatalogModel]:
        query = select(*_COLUMNS)
        if enabled_only:
            query = query.where(models.c.enabled)
        return await keyset_page(self._session, query, page, keys=[models.c.id], item=_model)

    async def add(self, model: CatalogModel) -> None:
        """ON CONFLICT instead of catching the unique violation: the transaction is never aborted, so no
        SAVEPOINT round trips, and no matching on constraint names."""
        inserted = await self._session.execute(
            insert(models)
            .values(id=model.id, **_values(model))
            .on_conflict_do_nothing(index_elements=[models.c.id])
            .returning(models.c.id)
        )
        if inserted.one_or_none() is None:
            raise ModelExists

    async def update(self, model: CatalogModel) -> bool:
        result = await self._session.execute(
            update(models)
            .where(models.c.id == model.id)
            .values(**_values(model), updated_at=func.now())
            .returning(models.c.id)
        )
        return result.one_or_none() is not None

    async def delete(self, model_id: str) -> bool:
        result = await self._session.execute(delete(models).where(models.c.id == model_id).returning(models.c.id))
        return result.one_or_none() is not None
