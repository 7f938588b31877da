"""With no DATABASE_URL, run PostgreSQL from the `pgserver` package in `<data_dir>/postgres` for this process."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pgserver
import structlog

log = structlog.get_logger(__name__)


@contextmanager
def embedded_postgres(data_dir: str) -> Iterator[str]:
    """Start (or join) the embedded server and yield its URL; stop it when this process started it."""
    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    log.info("embedded_postgres_started", pgdata=str(pgdata))
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
