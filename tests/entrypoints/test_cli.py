"""The CLI as an operator runs it: real processes, real PostgreSQL (embedded when no DATABASE_URL)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from entrypoints.cli import PROJECT_ROOT
from tests.support.database import throwaway_database

CREDITGATE = str(Path(sys.executable).with_name("creditgate"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JWT_SECRET", "PORT"}}
    return environ | {"DATA_DIR": str(tmp_path / "data"), "CREDITGATE_ENV": "development"} | extra


def _wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}")
        try:
            response = httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return response
        time.sleep(0.2)
    pytest.fail(f"{url} never became ready")


def test_migrate_brings_an_empty_database_to_head(postgres_server_url: str, tmp_path: Path) -> None:
    with throwaway_database(postgres_server_url, migrate=False) as url:
        result = subprocess.run(
            [CREDITGATE, "migrate"],
            env=_environment(tmp_path, DATABASE_URL=url),
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()


@pytest.mark.slow
def test_serve_runs_on_the_embedded_database_when_no_url_is_given(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [CREDITGATE, "serve", "--port", str(port)],
        env=_environment(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
        assert ready.json()["database"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/api-docs", timeout=5).status_code == 200
        assert (tmp_path / "data" / "postgres").is_dir()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), "the embedded database kept running"


def test_production_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [CREDITGATE, "migrate"],
        env=_environment(tmp_path, CREDITGATE_ENV="production", DATABASE_URL="postgresql://x@127.0.0.1:9/x"),
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert b"JWT_SECRET" in result.stderr


def test_the_project_root_holds_the_migrations() -> None:
    assert (PROJECT_ROOT / "alembic" / "env.py").is_file()
