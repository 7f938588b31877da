import logging
import sys

import structlog

from entrypoints.settings import Settings


def configure_logging(settings: Settings) -> None:
    """JSON lines in production, readable console lines in development; request context merged into each."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.is_production
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # Loggers cached on first use keep the processor list they saw: replace its contents, never the list,
    # so a reconfiguration (another app in the same process, `structlog.testing.capture_logs`) reaches them.
    processors: list[structlog.typing.Processor] = structlog.get_config()["processors"]
    processors[:] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
