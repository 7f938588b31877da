"""What PostgreSQL, or the way to it, answers, said in the application's terms; one rule for both drivers.

A server that refuses or drops the work (no connection in time, too many connections, a statement past its bound,
a deadlock) is StorageUnavailable: nothing was written, retry later. A text with NUL (U+0000), which only a client
sends and PostgreSQL's text type cannot store, is InvalidInput."""

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.errors import DomainError, InvalidInput, StorageUnavailable

CHARACTER_NOT_IN_REPERTOIRE = "22021"
UNAVAILABLE_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "40",  # transaction rollback (deadlock, serialization): nothing was written
        "53",  # insufficient resources (too many connections, out of memory or disk)
        "57",  # operator intervention (statement_timeout, shutdown, cannot connect now)
    }
)
_UNREACHABLE = (OSError, TimeoutError, PoolTimeout, OperationalError, InterfaceError, asyncpg.InterfaceError)


def in_domain_terms(error: BaseException) -> DomainError | None:
    """The application's error for a driver's or SQLAlchemy's, or None when it is not one of those (a bug)."""
    driver_error = (error.orig if isinstance(error, DBAPIError) else None) or error
    sqlstate = str(getattr(driver_error, "sqlstate", None) or "")
    if isinstance(error, _UNREACHABLE) or sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES:
        named = driver_error.__cause__ or driver_error  # SQLAlchemy's adapter wraps asyncpg's own error
        return StorageUnavailable(f"{type(named).__name__} {sqlstate}".rstrip())
    if sqlstate == CHARACTER_NOT_IN_REPERTOIRE:
        return InvalidInput("text must not contain NUL (U+0000) characters", field="body")
    return None


@contextmanager
def translated() -> Iterator[None]:
    """Raises the application's error in place of a driver's or SQLAlchemy's it has a word for."""
    try:
        yield
    except Exception as error:
        if (domain_error := in_domain_terms(error)) is None:
            raise
        raise domain_error from error
