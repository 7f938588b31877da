import asyncio
from typing import Any, NewType
from uuid import uuid4

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection

from adapters.postgres.storage_errors import in_domain_terms, translated

AutocommitEngine = NewType("AutocommitEngine", AsyncEngine)
"""Single statements, each in an `engine.begin()` block of its own: directly on PostgreSQL outside any transaction
(one round trip each, and no connection held between them); behind PgBouncer each block is a transaction (see
`autocommit`)."""


def asyncpg_url(database_url: str) -> str:
    """Accept the usual `postgresql://` form (and `postgres://`) and pin the asyncpg driver."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def driver_dsn(database_url: str) -> str:
    """The URL as asyncpg itself takes it (no SQLAlchemy driver suffix)."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def session_settings(application_name: str, timeout_seconds: float, *, pgbouncer: bool) -> dict[str, str]:
    """Each connection's server settings: its name, and directly on PostgreSQL a `statement_timeout` (PgBouncer
    refuses it at startup)."""
    settings = {"application_name": application_name}
    if not pgbouncer:
        settings["statement_timeout"] = str(round(timeout_seconds * 1000))
    return settings


def create_engine(
    database_url: str, *, pool_size: int, max_overflow: int, timeout_seconds: float, pgbouncer: bool = False
) -> AsyncEngine:
    """`timeout_seconds` bounds everything that waits for the server: connecting (authentication included), a
    pool checkout, and each statement (asyncpg's `command_timeout`, client-side, so it holds when the server
    answers nothing; directly on PostgreSQL its `statement_timeout` too, which PgBouncer would refuse at startup).

    `pgbouncer`: the server is PgBouncer in transaction mode, where consecutive transactions of one client
    connection may run on different server connections, so no prepared statement may outlive its transaction."""
    server_settings = session_settings("creditgate", timeout_seconds, pgbouncer=pgbouncer)
    connect_args: dict[str, Any] = {
        "timeout": timeout_seconds,
        "command_timeout": timeout_seconds,
        "server_settings": server_settings,
    }
    if pgbouncer:
        connect_args |= {
            "statement_cache_size": 0,  # asyncpg's own cache
            "prepared_statement_cache_size": 0,  # SQLAlchemy's cache in its asyncpg adapter
            "prepared_statement_name_func": _unique_statement_name,
        }
    engine = create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_seconds,
        pool_pre_ping=False,
        poolclass=_Pool,
        hide_parameters=True,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "handle_error", _in_domain_terms)
    return engine


class _Pool(AsyncAdaptedQueuePool):
    """A checkout fails outside any statement (the pool's own timeout; a connect refused, timed out or turned
    away), where `handle_error` sees only some of it: it is translated here."""

    def connect(self) -> PoolProxiedConnection:
        with translated():
            return super().connect()


def _in_domain_terms(context: ExceptionContext) -> Exception | None:
    """Every error of a statement goes through here; SQLAlchemy raises what this returns, chained to the
    driver's error."""
    _drop_if_timed_out(context)
    return in_domain_terms(context.sqlalchemy_exception or context.original_exception)


def _drop_if_timed_out(context: ExceptionContext) -> None:
    """A statement that outlived its bound (or whose caller gave up) leaves its connection mid-protocol, and
    resetting or closing it gracefully would wait for the server again: it is terminated at once (the rest of
    the pool is left alone)."""
    if not isinstance(context.original_exception, TimeoutError | asyncio.CancelledError):
        return
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False
    if context.connection is not None and (driver := context.connection.connection.driver_connection) is not None:
        driver.terminate()


def _unique_statement_name() -> str:
    """Statements SQLAlchemy still prepares (to learn result types) get names no other client can collide with."""
    return f"__asyncpg_{uuid4().hex}__"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def autocommit(engine: AsyncEngine, *, pgbouncer: bool = False) -> AutocommitEngine:
    """`pgbouncer`: SQLAlchemy's asyncpg adapter prepares each statement in a round trip of its own before running
    it, and in transaction pooling PgBouncer may hand the two round trips of a statement outside a transaction to
    two server connections (the second then fails: prepared statement does not exist). There the blocks stay
    transactions, each kept on one server connection, for two more round trips (BEGIN, COMMIT)."""
    if pgbouncer:
        return AutocommitEngine(engine)
    return AutocommitEngine(engine.execution_options(isolation_level="AUTOCOMMIT"))
