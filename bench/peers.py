"""The LiteLLM proxy as a third target of `make bench`, once `make bench-peers` has installed it under .bench/.

It runs offline with no database, as its own process tree: an environment built from nothing (it never sees
creditgate's `DATABASE_URL` or anything else of ours), the fake upstream as one `openai/...` model per behaviour,
a master key, the same number of uvicorn workers as creditgate, and its access log off as creditgate's is.
Everything it would fetch at start (its model cost map and other remote JSON) is read from its own package.
"""

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from bench.processes import ROOT, BenchError, Target, free_port, running, wait_http

VENV = ROOT / ".bench" / "litellm"
LITELLM = VENV / "bin" / "litellm"
STARTED = "Application startup complete."
OFFLINE = {  # each makes LiteLLM read its packaged copy instead of fetching the remote one
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
}
# uvicorn's own lines (worker start, death) stay: readiness and respawns are read from them.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


def installed_version() -> str | None:
    """LiteLLM's version in .bench/, or None when `make bench-peers` has not installed it."""
    if not LITELLM.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout.strip() or None


@dataclass(frozen=True)
class Starting:
    process: subprocess.Popen[bytes]
    base: str
    master_key: str
    log: Path
    workers: int


@contextlib.contextmanager
def litellm(workdir: Path, upstream: str, models: list[str], workers: int) -> Iterator[Starting]:
    """Starts the proxy and returns at once (it takes tens of seconds to import): `ready` waits for it."""
    home = workdir / "litellm"
    home.mkdir()
    master_key = f"sk-bench-{secrets.token_hex(12)}"
    config = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": upstream, "api_key": "bench"}}
            for m in models
        ],
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"request_timeout": 60},
    }
    (home / "config.yaml").write_bytes(msgspec.json.encode(config))  # JSON is YAML
    (home / "log_config.json").write_bytes(msgspec.json.encode(LOG_CONFIG))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LITELLM_LOG": "ERROR", **OFFLINE}
    port = free_port()
    args = [str(LITELLM), "--config", str(home / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--num_workers", str(workers), "--timeout_worker_healthcheck", "60", "--telemetry", "False"]
    args += ["--log_config", str(home / "log_config.json")]
    log = home / "litellm.log"
    with running(args, env, log) as process:
        yield Starting(process, f"http://127.0.0.1:{port}", master_key, log, workers)


def ready(starting: Starting, timeout_s: float = 180) -> Target:
    """Waits until every worker has started (one answering is not enough: the other would be measured starting)."""
    deadline = time.monotonic() + timeout_s
    wait_http(f"{starting.base}/health/liveliness", timeout_s, starting.process)
    while starting.log.read_text().count(STARTED) < starting.workers:
        if time.monotonic() > deadline or starting.process.poll() is not None:
            raise BenchError(f"LiteLLM's {starting.workers} workers did not all start (see {starting.log})")
        time.sleep(0.5)
    return Target(
        "LiteLLM", f"{starting.base}/v1/chat/completions", starting.process.pid, (starting.master_key,), False
    )
