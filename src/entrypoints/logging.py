import logging
import sys
import traceback

import asyncpg
import structlog
from sqlalchemy.exc import EmulatedDBAPIException, StatementError

from entrypoints.settings import RuntimeSettings


def configure_logging(runtime: RuntimeSettings) -> None:
    """JSON lines in production, readable console lines in development; request context merged into each."""
    level = logging.getLevelNamesMapping()[runtime.log_level.upper()]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if runtime.is_production
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # Loggers cached on first use keep the processor list they saw: replace its contents, never the list,
    # so a reconfiguration (another app in the same process, `structlog.testing.capture_logs`) reaches them.
    processors: list[structlog.typing.Processor] = structlog.get_config()["processors"]
    processors[:] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.ExceptionRenderer(exception_formatter=format_exception_without_values),
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


_DATABASE_ERRORS = (StatementError, EmulatedDBAPIException, asyncpg.PostgresError, asyncpg.InterfaceError)
_DIRECT_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def format_exception_without_values(exc_info: structlog.typing.ExcInfo) -> str:
    """A traceback as Python prints it, except that a database error shows its class, SQLSTATE, the names it
    quotes and the statement, never its message: SQLAlchemy appends `[parameters: …]` and the driver quotes values
    (`DETAIL: Failing row contains (…)`, `invalid input for query argument $1: …`)."""
    error: BaseException | None = exc_info[1]
    parts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = "".join(traceback.format_tb(error.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{_describe(error)}\n")
        if error.__cause__ is not None:
            parts.append(_DIRECT_CAUSE)
            error = error.__cause__
        elif error.__context__ is not None and not error.__suppress_context__:
            parts.append(_CONTEXT)
            error = error.__context__
        else:
            error = None
    return "".join(reversed(parts)).rstrip("\n")


def _describe(error: BaseException) -> str:
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    if not isinstance(error, _DATABASE_ERRORS):
        return "".join(traceback.format_exception_only(error)).rstrip("\n")
    names = ("sqlstate", "schema_name", "table_name", "column_name", "constraint_name")
    facts = [f"{name}={value}" for name in names if (value := getattr(error, name, None))]
    if isinstance(error, StatementError):
        facts.append(f"[SQL: {error.statement}]")
    return f"{kind}: (message withheld: it may quote values) {' '.join(facts)}".rstrip()
