"""The processes a benchmark run starts, and what the load generator needs to reach a target."""

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class BenchError(Exception):
    """The run itself failed (not a missed target)."""


@dataclass(frozen=True)
class Target:
    """A gateway under measurement: its chat completions URL, the process tree sampled, bearer tokens to use."""

    name: str
    url: str
    root_pid: int
    tokens: tuple[str, ...]
    billed: bool  # pre-charges and settles every generation (creditgate), or only relays it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{process.args!r} exited with {process.returncode} before {url} answered")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310  # our own loopback URL
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer within {timeout_s} s")


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise BenchError(f"nothing listened on port {port} within 10 s")


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def no_respawns(name: str, log: Path) -> Iterator[None]:
    """Fails the run when uvicorn's supervisor respawned a worker meanwhile: the figures would include its start."""
    deaths_before = log.read_text().count("died") if log.exists() else 0
    yield
    if (deaths := log.read_text().count("died") - deaths_before) > 0:
        raise BenchError(f"{deaths} {name} worker(s) died and were respawned during the run (see {log})")
