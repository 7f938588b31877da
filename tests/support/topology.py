"""compose.yaml's topology as processes on loopback, for tests/deploy: a private PostgreSQL that can be stopped and
started, PgBouncer running deploy/pgbouncer.ini, a Redis of its own, and Caddy running deploy/Caddyfile. Every
process is started by a context manager that kills it on the way out, and every wait is bounded."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pgserver
from pgserver._commands import pg_ctl

from tests.support.cluster import free_port

REPOSITORY = Path(__file__).resolve().parents[2]
CADDYFILE = REPOSITORY / "deploy" / "Caddyfile"
PGBOUNCER_INI = REPOSITORY / "deploy" / "pgbouncer.ini"
PGBOUNCER_PASSWORD = "pgbouncer-password-of-the-suite"


def executable(name: str, path: str) -> str:
    """`path` if it is there, else `name` on PATH; else a failure that says how to get it (never a skip)."""
    found = path if Path(path).is_file() else shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is missing ({path}): tests/deploy needs it; `apt-get install {name}` (.ci/run does)"
        )
    return found


def wait_until(condition: Callable[[], bool], seconds: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {seconds} s")


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Daemon:
    """One long-running process, its output in `log_path`, that a test may kill and start again."""

    argv: list[str]
    environment: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float = 10) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._listening, seconds, f"{self.argv[0]} listening on {self.port}")

    def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.argv[0]} exited: {self.log_path.read_text()[-2000:]}")
        return accepts(self.port)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.kill(signal.SIGTERM)


class PrivatePostgres:
    """pgserver's PostgreSQL in `pgdata`, on a Unix socket there: this suite's alone, so it may be restarted."""

    def __init__(self, pgdata: Path) -> None:
        self._server = pgserver.get_server(pgdata, cleanup_mode="stop")

    @property
    def url(self) -> str:
        return str(self._server.get_uri())

    @property
    def socket_directory(self) -> str:
        return str(self._server.pgdata)

    @property
    def system_user(self) -> str | None:
        """The user pgserver runs PostgreSQL as when started by root (its data directory is that user's only)."""
        user = self._server.system_user
        return None if user is None else str(user)

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, new connections refused."""
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=self._server.pgdata, user=self._server.system_user, timeout=10)

    def start(self) -> None:
        self._server.ensure_postgres_running()

    def close(self) -> None:
        self._server.cleanup()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """In a directory of its own under the system's temporary one: as root, pgserver runs PostgreSQL as another
    user, who must reach it (a pytest directory is root's only)."""
    with tempfile.TemporaryDirectory(prefix="cg-deploy-pg-") as pgdata:
        server = PrivatePostgres(Path(pgdata))
        try:
            yield server
        finally:
            server.close()


@contextmanager
def pgbouncer(postgres: PrivatePostgres, database: str) -> Iterator[Daemon]:
    """PgBouncer with deploy/pgbouncer.ini, and only what this run needs after it: its port, the one database (on
    PostgreSQL's socket), the auth file. Its files are in a directory of their own that the user PgBouncer runs as
    can read (as root it must run as another user: pgserver's, who alone may open PostgreSQL's socket)."""
    binary = executable("pgbouncer", "/usr/sbin/pgbouncer")
    directory = Path(tempfile.mkdtemp(prefix="cg-pgbouncer-"))
    try:
        directory.chmod(0o755)
        port = free_port()
        (directory / "userlist.txt").write_text(f'"postgres" "{PGBOUNCER_PASSWORD}"\n')
        config = directory / "pgbouncer.ini"
        config.write_text(
            f"[databases]\n{database} = host={postgres.socket_directory} dbname={database}\n\n"
            f"[pgbouncer]\n%include {PGBOUNCER_INI}\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_file = {directory / 'userlist.txt'}\n"
        )
        for path in directory.iterdir():
            path.chmod(0o644)
        user = ["-u", postgres.system_user] if os.geteuid() == 0 and postgres.system_user else []
        daemon = Daemon([binary, *user, str(config)], dict(os.environ), directory / "pgbouncer.log", port)
        with running(daemon):
            yield daemon
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pgbouncer_url(daemon: Daemon, database: str) -> str:
    return f"postgresql://postgres:{PGBOUNCER_PASSWORD}@127.0.0.1:{daemon.port}/{database}"


@contextmanager
def redis_server(workdir: Path) -> Iterator[Daemon]:
    """A Redis of the suite's own (not the machine's): a test kills it and starts it again on the same port."""
    binary = executable("redis-server", "/usr/bin/redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with running(Daemon([*argv, "--dir", str(workdir)], dict(os.environ), workdir / "redis.log", port)) as daemon:
        yield daemon


@dataclass
class Caddy:
    daemon: Daemon
    http_port: int
    https_port: int
    data_directory: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def root_certificate(self) -> Path:
        return self.data_directory / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_certificate))


@contextmanager
def caddy(upstreams: list[str], workdir: Path, health_interval: str = "1s", *, serving: bool = True) -> Iterator[Caddy]:
    """Caddy running the repository's deploy/Caddyfile: compose's defaults replaced through its environment
    placeholders (free high ports, these upstreams, no admin endpoint) and a home of its own, so its local CA is
    this run's and thrown away with it. `serving`: wait until a replica answers through it."""
    binary = executable("caddy", "/usr/bin/caddy")
    home = Path(tempfile.mkdtemp(prefix="caddy-home-", dir=workdir))
    http_port, https_port = free_port(), free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        # The HTTPS port in the site address, not in `https_port`: Caddy's redirect from HTTP names a site's own
        # port, while it takes `https_port` for one clients reach as 443 (a port forwarded to it).
        "SITE_ADDRESS": f"localhost:{https_port}",
        "HTTP_PORT": str(http_port),
        "CADDY_ADMIN": "off",
        "HEALTH_INTERVAL": health_interval,
    } | {f"UPSTREAM{index}": upstream for index, upstream in enumerate(upstreams, start=1)}
    argv = [binary, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
    with running(Daemon(argv, environment, home / "caddy.log", https_port)) as daemon:
        proxy = Caddy(daemon, http_port, https_port, home / "data")
        wait_until(proxy.root_certificate.is_file, 10, "Caddy's local CA")
        # The site's certificate is issued after the root: until then handshakes fail. /metrics is Caddy's own 404.
        wait_until(lambda: _answers(proxy, "/metrics", 404), 10, "Caddy serving HTTPS")
        if serving:
            wait_until(lambda: _answers(proxy, "/health/ready", 200), 15, "a replica ready through Caddy")
        yield proxy


def _answers(proxy: Caddy, path: str, status: int) -> bool:
    try:
        return httpx.get(f"{proxy.url}{path}", verify=proxy.trust(), timeout=2).status_code == status
    except httpx.TransportError:
        return False


async def replica_metric(url: str, name: str, *label_parts: str) -> float:
    """The sum of a replica's `name` samples whose labels contain each of `label_parts`, read from its /metrics as
    a trusted proxy would (production serves HTTPS only)."""
    async with httpx.AsyncClient(timeout=5) as http:
        metrics = (await http.get(f"{url}/metrics", headers={"X-Forwarded-Proto": "https"})).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith((f"{name}{{", f"{name} ")) and all(part in line for part in label_parts)
    )
