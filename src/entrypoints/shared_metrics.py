"""prometheus_client's multiprocess mode for `serve --workers N`: a scrape of any worker reports the sum of all.

Every worker writes its series to memory-mapped files in PROMETHEUS_MULTIPROC_DIR and `/metrics` (Litestar's
controller) merges the directory when the variable is set. prometheus_client chooses between in-memory and
file-backed values once, when it is imported, and `serve` has imported it before it parses its arguments: so the
directory is set up for the workers uvicorn spawns (fresh interpreters that inherit the environment). With one
worker `serve` answers requests itself and its plain registry already is the total (with the process_* series
that multiprocess mode cannot export); an operator who exports PROMETHEUS_MULTIPROC_DIR gets multiprocess mode
either way.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
LIVE_GAUGE_FILES = "gauge_live*_*.db"  # livesum, livemax …: the gauges that count only running processes


@contextmanager
def shared_metrics_directory(workers: int) -> Iterator[Path | None]:
    """The directory the workers of this `serve` share, emptied before they start (a previous run's files would
    add its counters to this one's); a directory of our own is removed at exit, an operator's is kept."""
    configured = os.environ.get(MULTIPROC_DIR)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # prometheus_client's files only: the directory may hold others
            stale.unlink()
        yield directory
        return
    if workers == 1:
        yield None
        return
    directory = Path(tempfile.mkdtemp(prefix="creditgate-metrics-"))
    os.environ[MULTIPROC_DIR] = str(directory)
    try:
        yield directory
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def forget_dead_workers() -> None:
    """At a worker's start: drop the live gauges of workers that are gone. uvicorn replaces a killed worker without
    a hook to tell anyone, so without this its last `open_streams` and `requests_in_progress` would count forever.
    Counters and histograms stay: what a dead worker counted still happened."""
    directory = os.environ.get(MULTIPROC_DIR)
    if not directory:
        return
    for path in Path(directory).glob(LIVE_GAUGE_FILES):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _running(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def leave_shared_metrics() -> None:
    """At a worker's orderly exit (shutdown, or uvicorn's SIGHUP restart, whose replacement starts first)."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
