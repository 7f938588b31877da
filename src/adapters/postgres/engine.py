from typing import Any, NewType
from uuid import uuid4

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

AutocommitEngine = NewType("AutocommitEngine", AsyncEngine)
"""Single statements outside any transaction: one round trip each, and no connection held between them."""


def asyncpg_url(database_url: str) -> str:
    """Accept the usual `postgresql://` form (and `postgres://`) and pin the asyncpg driver."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    database_url: str, *, pool_size: int, max_overflow: int, timeout_seconds: float, pgbouncer: bool = False
) -> AsyncEngine:
    """`pgbouncer`: the server is PgBouncer in transaction mode, where consecutive transactions of one client
    connection may run on different server connections, so no prepared statement may outlive its transaction."""
    connect_args: dict[str, Any] = {"timeout": timeout_seconds, "server_settings": {"application_name": "creditgate"}}
    if pgbouncer:
        connect_args |= {
            "statement_cache_size": 0,  # asyncpg's own cache
            "prepared_statement_cache_size": 0,  # SQLAlchemy's cache in its asyncpg adapter
            "prepared_statement_name_func": _unique_statement_name,
        }
    return create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_seconds,
        pool_pre_ping=False,
        hide_parameters=True,
        connect_args=connect_args,
    )


def _unique_statement_name() -> str:
    """Statements SQLAlchemy still prepares (to learn result types) get names no other client can collide with."""
    return f"__asyncpg_{uuid4().hex}__"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def autocommit(engine: AsyncEngine) -> AutocommitEngine:
    return AutocommitEngine(engine.execution_options(isolation_level="AUTOCOMMIT"))
