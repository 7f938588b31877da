"""The catalog on PostgreSQL: primary-key reads, keyset pages by id, and writes that leave the transaction usable."""

import dataclasses
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.catalog import ModelCache, PgCatalog, PgModelLookup
from adapters.postgres.change_feed import ChangeFeed
from adapters.postgres.engine import autocommit
from adapters.postgres.tables import models
from application.ports.persistence import PageRequest
from domain.catalog import CatalogModel, ModelExists
from domain.credits import Credits
from domain.errors import InvalidInput
from domain.pricing import Pricing

SEEDED = ["dr14", "gemini-flash"]


def _model(model_id: str, *, enabled: bool = True) -> CatalogModel:
    return CatalogModel(
        id=model_id,
        provider="simulator",
        upstream_model=f"upstream-{model_id}",
        description="",
        pricing=Pricing(1000, Credits(1), Credits.parse("2.5")),
        max_output_tokens=64,
        enabled=enabled,
    )


@pytest.fixture
async def session(clean_db: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with async_sessionmaker(clean_db, expire_on_commit=False)() as session:
        yield session


@pytest.fixture
def catalog(session: AsyncSession, clean_db: AsyncEngine) -> PgCatalog:
    return PgCatalog(session, PgModelLookup(autocommit(clean_db), ModelCache(ChangeFeed(None, timeout_seconds=1))))


async def _add_committed(catalog: PgCatalog, session: AsyncSession, *added: CatalogModel) -> None:
    for model in added:
        await catalog.add(model)
    await session.commit()


async def test_get_reads_the_seeded_model_exactly(catalog: PgCatalog) -> None:
    dr14 = await catalog.get("dr14")
    assert dr14 is not None
    assert (dr14.provider, dr14.enabled) == ("simulator", True)
    assert dr14.pricing == Pricing(100, Credits.whole(20), Credits.whole(20))
    assert await catalog.get("no-such-model") is None


async def test_an_added_model_reads_back_equal(catalog: PgCatalog, session: AsyncSession) -> None:
    added = _model("m:1.x")
    await _add_committed(catalog, session, added)
    assert await catalog.get("m:1.x") == added


@pytest.mark.parametrize(
    ("cached", "written"), [(Credits(0), None), (None, Credits.parse("3.125")), (Credits(1), Credits(10**10))]
)
async def test_cache_prices_read_back_and_an_unset_one_stays_unset(
    catalog: PgCatalog, session: AsyncSession, cached: Credits | None, written: Credits | None
) -> None:
    pricing = dataclasses.replace(_model("m").pricing, cached_input_credits=cached, cache_write_credits=written)
    model = dataclasses.replace(_model("m"), pricing=pricing)
    await _add_committed(catalog, session, model)
    assert await catalog.get("m") == model


async def test_a_taken_id_raises_model_exists_and_the_transaction_goes_on(
    catalog: PgCatalog, session: AsyncSession
) -> None:
    with pytest.raises(ModelExists):
        await catalog.add(_model("dr14"))
    await _add_committed(catalog, session, _model("after-conflict"))
    assert await catalog.get("after-conflict") is not None
    dr14 = await catalog.get("dr14")
    assert dr14 is not None
    assert dr14.upstream_model == "dr14"


async def test_list_pages_by_id_and_hides_disabled_models_on_request(catalog: PgCatalog, session: AsyncSession) -> None:
    await _add_committed(catalog, session, _model("a-off", enabled=False), _model("zz"))
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await catalog.list(PageRequest(limit=1, cursor=cursor), enabled_only=False)
        ids.extend(m.id for m in page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert ids == ["a-off", *SEEDED, "zz"]
    enabled = await catalog.list(PageRequest(limit=10), enabled_only=True)
    assert [m.id for m in enabled.items] == [*SEEDED, "zz"]
    assert enabled.next_cursor is None


async def test_a_full_last_page_has_no_next_cursor(catalog: PgCatalog) -> None:
    page = await catalog.list(PageRequest(limit=2), enabled_only=True)
    assert [m.id for m in page.items] == SEEDED
    assert page.next_cursor is None


async def test_a_forged_cursor_is_invalid_input(catalog: PgCatalog) -> None:
    with pytest.raises(InvalidInput):
        await catalog.list(PageRequest(cursor="not-a-cursor"), enabled_only=False)


async def test_update_replaces_every_field_and_stamps_updated_at(catalog: PgCatalog, session: AsyncSession) -> None:
    before = await session.scalar(select(models.c.updated_at).where(models.c.id == "dr14"))
    changed = dataclasses.replace(
        _model("dr14", enabled=False), description="new", pricing=Pricing(7, Credits(0), Credits(3))
    )
    assert await catalog.update(changed) is True
    await session.commit()
    assert await catalog.get("dr14") == changed
    after = await session.scalar(select(models.c.updated_at).where(models.c.id == "dr14"))
    assert before is not None
    assert after is not None
    assert after > before


async def test_update_and_delete_of_a_missing_model_answer_false(catalog: PgCatalog) -> None:
    assert await catalog.update(_model("ghost")) is False
    assert await catalog.delete("ghost") is False


async def test_delete_removes_the_model(catalog: PgCatalog, session: AsyncSession) -> None:
    assert await catalog.delete("gemini-flash") is True
    await session.commit()
    assert await catalog.get("gemini-flash") is None
    page = await catalog.list(PageRequest(), enabled_only=False)
    assert [m.id for m in page.items] == ["dr14"]
