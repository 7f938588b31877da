from typing import NewType

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

AutocommitEngine = NewType("AutocommitEngine", AsyncEngine)
"""Single statements outside any transaction: one round trip each, and no connection held between them."""


def asyncpg_url(database_url: str) -> str:
    """Accept the usual `postgresql://` form (and `postgres://`) and pin the asyncpg driver."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(database_url: str, *, pool_size: int, max_overflow: int, timeout_seconds: float) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_seconds,
        pool_pre_ping=False,
        connect_args={"timeout": timeout_seconds, "server_settings": {"application_name": "creditgate"}},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def autocommit(engine: AsyncEngine) -> AutocommitEngine:
    return AutocommitEngine(engine.execution_options(isolation_level="AUTOCOMMIT"))
