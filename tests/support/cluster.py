"""Several `creditgate serve` processes on one database: the way production scales out."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CREDITGATE = str(Path(sys.executable).with_name("creditgate"))

CLUSTER_ENVIRONMENT = {
    "CREDITGATE_ENV": "development",
    "JWT_SECRET": "cluster-secret-for-the-suite-only-0123456789",
    "SECRET_KEYS": "Y2x1c3Rlci1tYXN0ZXIta2V5LWZvci10aGUtc3VpdGU",
    "ARGON2_PROFILE": "cheapest",
    "SIMULATOR_TOKEN_DELAY_MS": "5",
    "LOCAL_MODEL": "off",  # no llama-server per instance: these suites run on the simulator
    "GENERATION_LEASE_SECONDS": "3",
    "REAPER_INTERVAL_SECONDS": "1",
    "LOGIN_FAILURE_LIMIT": "0",
    "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "0",
    "RATE_LIMIT_USER_RPM": "0",
    "RATE_LIMIT_KEY_RPM": "0",
    "DB_POOL_SIZE": "5",
    "DB_MAX_OVERFLOW": "5",
    "LOG_LEVEL": "warning",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Instance:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    signalled: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    environment: dict[str, str]
    workdir: Path
    instances: list[Instance] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [instance.url for instance in self.instances]

    def start(self, count: int) -> None:
        for _ in range(count):
            self.instances.append(self._spawn())
        for instance in self.instances:
            wait_ready(instance)

    def _spawn(self) -> Instance:
        port = free_port()
        log_path = self.workdir / f"serve-{port}.log"
        process = subprocess.Popen(
            [CREDITGATE, "serve", "--port", str(port), "--no-migrate"],
            env=self.environment,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
        )
        return Instance(port, process, log_path)

    def kill(self, index: int, signum: int = signal.SIGKILL) -> None:
        self.instances[index].signalled = True
        self.instances[index].process.send_signal(signum)

    def replace_stopped(self) -> None:
        """Each instance a test signalled, or that exited, gives its place to a new one."""
        stopped = [
            i for i, instance in enumerate(self.instances) if instance.signalled or instance.process.poll() is not None
        ]
        for index in stopped:
            _end(self.instances[index].process)
            self.instances[index] = self._spawn()
        for index in stopped:
            wait_ready(self.instances[index])

    def stop(self) -> None:
        for instance in self.instances:
            if instance.process.poll() is None:
                instance.process.terminate()
        for instance in self.instances:
            _end(instance.process)


def _end(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(instance: Instance, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if instance.process.poll() is not None:
            raise RuntimeError(f"instance exited: {instance.log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{instance.url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"instance never became ready: {instance.log_path.read_text()[-2000:]}")


@contextmanager
def running_cluster(count: int, database_url: str, workdir: Path, **environment: str) -> Iterator[Cluster]:
    inherited = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "DATABASE_URL"))}
    env = inherited | CLUSTER_ENVIRONMENT | {"DATABASE_URL": database_url, "DATA_DIR": str(workdir / "data")}
    cluster = Cluster(env | environment, workdir)
    try:
        cluster.start(count)
        yield cluster
    finally:
        cluster.stop()
