from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.postgres.change_feed import CHANNEL
from adapters.postgres.engine import asyncpg_url
from adapters.postgres.statements import StatementPool
from adapters.postgres.tables import metadata
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.database import postgres_server, throwaway_database
from tests.support.servers import serve_on_loopback
from tests.support.settings import suite_settings


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    with throwaway_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(database_url), pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def statements(database_url: str) -> AsyncIterator[StatementPool]:
    async with StatementPool.opened(database_url, size=5, timeout_seconds=5) as pool:
        yield pool


@pytest.fixture(scope="session")
async def seeded_rows(engine: AsyncEngine) -> dict[str, list[dict[str, object]]]:
    """What the migrations seeded (the default catalog), restored before every test."""
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM models"))).mappings().all()
    return {"models": [dict(row) for row in rows]}


@pytest.fixture
async def clean_db(engine: AsyncEngine, seeded_rows: dict[str, list[dict[str, object]]]) -> AsyncEngine:
    """Every table as the migrations left it (the ledger's no-truncate trigger is bypassed for this only)."""
    async with engine.begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        tables = (
            (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        names = ", ".join(f'"{name}"' for name in tables)
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        for table, rows in seeded_rows.items():
            if rows:
                await connection.execute(metadata.tables[table].insert(), rows)
        for table in tables:  # the replica role silenced the change triggers: every instance's caches forget all
            await connection.execute(text("SELECT pg_notify(:channel, :table)"), {"channel": CHANNEL, "table": table})
    return engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return suite_settings(database_url)


@pytest.fixture
def app(settings: Settings, clean_db: AsyncEngine) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def served(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind a real socket: uvicorn on a free loopback port, and an httpx client pointed at it."""
    async with serve_on_loopback(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield http
