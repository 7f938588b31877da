"""The directory `serve` gives its workers for prometheus_client's multiprocess mode (the two-worker scrape itself:
tests/e2e/test_metrics_workers.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoints.shared_metrics import MULTIPROC_DIR, forget_dead_workers, shared_metrics_directory


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_DIR, raising=False)


def test_several_workers_get_a_fresh_directory_of_this_serve_removed_at_exit() -> None:
    with shared_metrics_directory(2) as directory:
        assert directory is not None
        assert os.environ[MULTIPROC_DIR] == str(directory)
        assert list(directory.iterdir()) == []
        (directory / "counter_7.db").write_bytes(b"")
    assert not directory.exists()
    assert MULTIPROC_DIR not in os.environ


def test_one_worker_keeps_the_plain_registry() -> None:
    with shared_metrics_directory(1) as directory:
        assert directory is None
        assert MULTIPROC_DIR not in os.environ


def test_an_operator_directory_is_emptied_of_metric_files_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    (tmp_path / "counter_7.db").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not ours")
    with shared_metrics_directory(1) as directory:
        assert directory == tmp_path
        assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.exists()


def test_the_live_gauges_of_exited_processes_are_forgotten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    for name in (f"gauge_livesum_{exited.pid}.db", f"counter_{exited.pid}.db", f"gauge_livesum_{os.getpid()}.db"):
        (tmp_path / name).write_bytes(b"")
    forget_dead_workers()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{exited.pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    )
