"""DB_PGBOUNCER: the engine behind PgBouncer in transaction mode caches no statement and never reuses a
prepared statement name (consecutive transactions may run on different server connections)."""

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import create_engine
from entrypoints.container import build_container
from entrypoints.settings import load_settings


async def _adapted_connection(engine: AsyncEngine) -> Any:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return raw.dbapi_connection


async def test_the_pgbouncer_engine_caches_no_statement_and_names_each_one_afresh(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, timeout_seconds=5, pgbouncer=True)
    try:
        for value in range(3):
            async with engine.begin() as connection:
                assert await connection.scalar(text("SELECT CAST(:v AS int) + 1"), {"v": value}) == value + 1
        adapted = await _adapted_connection(engine)
        assert adapted._prepared_statement_cache is None
        assert adapted._connection._stmt_cache.get_max_size() == 0
        names = {adapted._prepared_statement_name_func() for _ in range(3)}
        assert len(names) == 3
        assert all(name.startswith("__asyncpg_") for name in names)
    finally:
        await engine.dispose()


async def test_a_direct_engine_keeps_its_statement_caches(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, timeout_seconds=5)
    try:
        adapted = await _adapted_connection(engine)
        assert adapted._prepared_statement_cache is not None
        assert adapted._connection._stmt_cache.get_max_size() > 0
    finally:
        await engine.dispose()


async def test_db_pgbouncer_switches_the_container_s_engine(database_url: str, tmp_path: Path) -> None:
    environment = {"DATABASE_URL": database_url, "DB_PGBOUNCER": "true", "DATA_DIR": str(tmp_path)}
    settings = load_settings(environment, env_file=tmp_path / "none")
    assert settings.database.pgbouncer is True
    assert load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none").database.pgbouncer is False
    container = build_container(settings)
    try:
        adapted = await _adapted_connection(await container.get(AsyncEngine))
        assert adapted._prepared_statement_cache is None
    finally:
        await container.close()


async def test_every_statement_is_bounded_server_side_too_unless_behind_pgbouncer(database_url: str) -> None:
    """PgBouncer refuses unknown startup parameters; there asyncpg's client-side `command_timeout` bounds alone."""
    for pgbouncer, expected in ((False, "1500ms"), (True, "0")):
        engine = create_engine(database_url, pool_size=1, max_overflow=0, timeout_seconds=1.5, pgbouncer=pgbouncer)
        try:
            async with engine.connect() as connection:
                assert await connection.scalar(text("SHOW statement_timeout")) == expected
            adapted = await _adapted_connection(engine)
            assert adapted._connection._config.command_timeout == 1.5
        finally:
            await engine.dispose()
