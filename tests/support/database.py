"""A throwaway PostgreSQL database per test run: TEST_DATABASE_URL's server, else an embedded pgserver."""

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pgserver
from sqlalchemy.engine import make_url

from entrypoints.cli import run_migrations


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a URL of a maintenance database on a server we may create databases on."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="cg-pg-") as pgdata:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def with_database(server_url: str, name: str) -> str:
    url = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database=name)
    return url.render_as_string(hide_password=False)


def _connect_args(server_url: str) -> dict[str, object]:
    url = make_url(server_url)
    args: dict[str, object] = {
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "host": url.query.get("host") or url.host,
        "port": url.port,
    }
    return {k: v for k, v in args.items() if v}


async def _execute(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(**_connect_args(server_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def throwaway_database(server_url: str, *, migrate: bool = True) -> Iterator[str]:
    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    try:
        if migrate:
            run_migrations(url)
        yield url
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
