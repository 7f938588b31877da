"""`make bench`: creditgate against a direct call of the same fake upstream, and against the LiteLLM proxy when
`make bench-peers` has installed it, in one run, into docs/benchmarks.md.

A throwaway database on DATABASE_URL's server (else TEST_DATABASE_URL's, else the embedded pgserver of `make run`)
is migrated and seeded through the public API: an admin, catalog models on the `openai` provider pointing at
`bench/upstream.py`, funded users. Each scenario (bench/scenarios.py, after SPEC §10) runs `bench/load.py` in its
own process, first against the upstream, then through `creditgate serve`, then through LiteLLM, while the measured
target's process tree is sampled from /proc over the same window. `--soak SECONDS` runs only the memory soak and
records it in its own section of the same file.

Exit status: 0 when the run completed (missed targets are stated in the table), 1 when the run itself failed.
"""

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import msgspec
from sqlalchemy.engine import make_url

from bench import peers
from bench.load import LoadResult
from bench.processes import ROOT, BenchError, Target, free_port, no_respawns, running, wait_for_port, wait_http
from bench.procfs import Sampler
from bench.report import (
    BEGIN,
    CREDITGATE,
    END,
    SOAK_BEGIN,
    SOAK_END,
    machine_facts,
    side_by_side,
    soak_section,
    splice,
    table,
    verdicts,
)
from bench.scenarios import SCENARIOS, SOAK, Measured, Scenario, Side

VENV_BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "bench-admin-password"
USER_PASSWORD = "bench-user-password"
FUNDS = "1000000"
PRICING = {"unit_tokens": 100, "input_credits": "20", "output_credits": "20"}  # as the default `dr14`
MODELS = sorted({s.upstream_model for s in (*SCENARIOS, SOAK)})
USERS = max(s.users for s in SCENARIOS)


# --- the database ---------------------------------------------------------------------------------------------


async def _sql(url: str, statement: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return list(await connection.fetch(statement))
    finally:
        await connection.close()


@contextlib.contextmanager
def database_server() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    from entrypoints.embedded_db import embedded_postgres  # noqa: PLC0415  # only without a server

    with embedded_postgres(str(ROOT / ".data")) as url:
        yield url


@contextlib.contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    name = f"cg_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_sql(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- the API, seeded like an operator would ---------------------------------------------------------------------


def api(base: str, method: str, path: str, body: object = None, token: str | None = None) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if method == "POST" and "/balance" in path:
        headers["idempotency-key"] = secrets.token_hex(8)
    data = None if body is None else msgspec.json.encode(body)
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  # our own loopback URL
            return msgspec.json.decode(response.read()) or {}
    except urllib.error.HTTPError as error:
        raise BenchError(f"{method} {path}: HTTP {error.code} {error.read()[:300]!r}") from None


def seed(base: str, users: int) -> list[str]:
    """Catalog models named after the upstream behaviours, and `users` funded users; returns their tokens."""
    admin = str(
        api(base, "POST", "/api/v1/auth/login", {"username": "bench-admin", "password": ADMIN_PASSWORD})["access_token"]
    )
    for model in MODELS:
        api(
            base,
            "POST",
            "/api/v1/admin/models",
            {"id": model, "provider": "openai", "upstream_model": model, "pricing": PRICING, "max_output_tokens": 4096},
            admin,
        )
    tokens = []
    for i in range(users):
        credentials = {"username": f"bench-user-{i}", "password": USER_PASSWORD}
        api(base, "POST", "/api/v1/auth/register", credentials)
        token = str(api(base, "POST", "/api/v1/auth/login", credentials)["access_token"])
        user_id = api(base, "GET", "/api/v1/me", token=token)["id"]
        api(base, "POST", f"/api/v1/admin/users/{user_id}/balance", {"amount": FUNDS, "reason": "benchmark"}, admin)
        tokens.append(token)
    return tokens


# --- scenarios ------------------------------------------------------------------------------------------------


def _load_args(url: str, tokens: tuple[str, ...], scenario: Scenario, start_at: float, duration_s: float) -> list[str]:
    args = [str(VENV_BIN / "python"), "-m", "bench.load", "--url", url, "--model", scenario.upstream_model]
    args += ["--concurrency", str(scenario.concurrency), "--start-at", str(start_at), "--duration", str(duration_s)]
    args += ["--stream"] * scenario.stream
    for token in tokens:
        args += ["--token", token]
    return args


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _load(
    url: str,
    tokens: tuple[str, ...],
    scenario: Scenario,
    warmup_s: float,
    duration_s: float,
    meanwhile: Callable[[float], None],
) -> LoadResult:
    """One load generator run; `meanwhile(start_at)` runs while it does, given when its measured window opens."""
    start_at = time.time() + warmup_s
    args = _load_args(url, tokens, scenario, start_at, duration_s)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)  # noqa: S603
    meanwhile(start_at)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise BenchError(f"the load generator failed: {stderr.decode()[-2000:]}")
    result = msgspec.json.decode(stdout, type=LoadResult)
    if result.requests == 0:
        raise BenchError(f"no request completed against {url}: {result.first_error}")
    return result


def load_direct(url: str, scenario: Scenario, warmup_s: float, duration_s: float) -> LoadResult:
    return _load(url, ("",), scenario, warmup_s, duration_s, lambda _: None)


def load_through(
    target: Target, tokens: tuple[str, ...], scenario: Scenario, warmup_s: float, duration_s: float
) -> Side:
    """The load through a gateway, its process tree sampled over exactly the load's measured window."""
    sampler = Sampler(target.root_pid)

    def sample(start_at: float) -> None:
        _sleep_until(start_at)
        with sampler:
            _sleep_until(start_at + duration_s)

    result = _load(target.url, tokens, scenario, warmup_s, duration_s, sample)
    return Side(
        result,
        sampler.cpu_s,
        sampler.wall_s,
        sampler.machine_percent,
        sampler.rss_before,
        sampler.rss_peak,
        sampler.rss_series,
    )


class Runner:
    """Runs scenarios on the targets; a direct run is shared by the scenarios that load the upstream alike."""

    def __init__(self, upstream: str, targets: list[Target], warmup_s: float, duration_s: float) -> None:
        self._upstream = f"{upstream}/chat/completions"
        self._targets = targets
        self._warmup_s, self._duration_s = warmup_s, duration_s
        self._direct: dict[tuple[str, bool, int], LoadResult] = {}

    def measure(self, scenario: Scenario, duration_s: float | None = None) -> Measured:
        key = (scenario.upstream_model, scenario.stream, scenario.concurrency)
        if key not in self._direct:
            print(f"  {scenario.name}: direct …", flush=True)
            self._direct[key] = load_direct(self._upstream, scenario, self._warmup_s, self._duration_s)
        sides = {}
        for target in self._targets:
            if not scenario.peers and target.name != CREDITGATE:
                continue
            print(f"  {scenario.name}: through {target.name} …", flush=True)
            tokens = target.tokens[: scenario.users] if target.billed else target.tokens
            duration = duration_s or self._duration_s
            sides[target.name] = load_through(target, tokens, scenario, self._warmup_s, duration)
        return Measured(scenario, self._direct[key], sides)


# --- orchestration --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def creditgate(env: dict[str, str], workers: int, log: Path, profile: Path | None) -> Iterator[Target]:
    port = free_port()
    args = [str(VENV_BIN / "creditgate"), "serve", "--no-migrate", "--port", str(port), "--workers", str(workers)]
    if profile is not None:  # one worker serves in the main process: cProfile sees every request
        if workers != 1:
            raise BenchError("--profile needs --workers 1")
        args = [str(VENV_BIN / "python"), "-m", "cProfile", "-o", str(profile), *args]
    with running(args, env, log) as process:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health/ready", 60, process)
        tokens = tuple(seed(base, USERS))
        with no_respawns(CREDITGATE, log):
            yield Target(CREDITGATE, f"{base}/v1/chat/completions", process.pid, tokens, billed=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per scenario and target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measured window")
    parser.add_argument(
        "--quick", action="store_true", help="check the harness: 1 s warmup, 3 s windows, report not written to docs"
    )
    parser.add_argument("--workers", type=int, default=2, help="creditgate's and LiteLLM's worker processes")
    parser.add_argument("--soak", type=float, default=0, help="run only the memory soak for this many seconds")
    parser.add_argument("--only", action="append", default=[], help="words of a scenario's name (repeatable)")
    parser.add_argument("--no-peers", action="store_true", help="leave LiteLLM out even when it is installed")
    parser.add_argument("--output", type=Path, help="the report (default docs/benchmarks.md)")
    parser.add_argument("--profile", type=Path, help="run a one-worker server under cProfile, stats to this file")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.duration = 1.0, 3.0
    try:
        run(args)
    except BenchError as error:
        sys.exit(f"bench: {error}")


def creditgate_env(database_url: str, upstream: str, workdir: Path) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        # ARGON2_PROFILE=cheapest (it only speeds up seeding) is refused in production
        "CREDITGATE_ENV": "development",
        "ARGON2_PROFILE": "cheapest",
        "LOG_LEVEL": "warning",
        "LOCAL_MODEL": "off",  # the gateway is measured, not the sidecar's memory
        "RATE_LIMIT_USER_RPM": "0",
        "RATE_LIMIT_KEY_RPM": "0",
        "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "0",
        "OPENAI_BASE_URL": upstream,
        "OPENAI_API_KEY": "bench",
        "DATA_DIR": str(workdir),
        # Per worker: 2 x DB_POOL_SIZE + DB_MAX_OVERFLOW + 1 connections at most (the SQLAlchemy pool, the money
        # path's pool, the LISTEN; docs/scaling.md), so two workers open 2 x 47 = 94 of PostgreSQL's default 100
        # (one wallet under concurrency is bound by how many generations can queue on its row: 16 gave 70 %, 22 80 %).
        "DB_POOL_SIZE": "22",
        "DB_MAX_OVERFLOW": "2",
    }


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    scenarios = (SOAK,) if args.soak else tuple(s for s in SCENARIOS if not args.only or selected(s, args.only))
    if not scenarios:
        raise BenchError(f"no scenario matches {args.only}; scenarios: {', '.join(s.name for s in SCENARIOS)}")
    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-"))
    log = workdir / "processes.log"
    output = args.output or (workdir / "benchmarks.md" if args.quick else ROOT / "docs" / "benchmarks.md")
    wanted = not args.no_peers and any(s.peers for s in scenarios)
    litellm_version = peers.installed_version() if wanted else None
    print(f"bench: logs in {workdir}; LiteLLM {litellm_version or 'not measured'}", flush=True)
    with contextlib.ExitStack() as stack:
        server_url = stack.enter_context(database_server())
        database_url = stack.enter_context(throwaway_database(server_url))
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        env = creditgate_env(database_url, upstream, workdir)
        upstream_args = [str(VENV_BIN / "python"), "-m", "bench.upstream", "--port", str(upstream_port)]
        wait_for_port(upstream_port, stack.enter_context(running(upstream_args, env, log)))
        peer = stack.enter_context(peers.litellm(workdir, upstream, MODELS, args.workers)) if litellm_version else None
        creditgate_bin = str(VENV_BIN / "creditgate")
        subprocess.run([creditgate_bin, "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)  # noqa: S603
        admin = [creditgate_bin, "create-admin", "--username", "bench-admin", "--password", ADMIN_PASSWORD]
        subprocess.run(admin, env=env, check=True, capture_output=True, cwd=ROOT)  # noqa: S603
        print(f"creditgate serve --workers {args.workers}", flush=True)
        with creditgate(env, args.workers, log, args.profile) as ours:
            targets = [ours]
            if peer is not None:
                print(f"LiteLLM {litellm_version} --num_workers {args.workers}", flush=True)
                targets.append(peers.ready(peer))
                stack.enter_context(no_respawns(peers.LITELLM.name, peer.log))
            print(f"  {' and '.join(t.name for t in targets)} ready at {time.monotonic() - started:.0f} s", flush=True)
            runner = Runner(upstream, targets, args.warmup, args.duration)
            results = [runner.measure(s, args.soak or None) for s in scenarios]
        billed, unsettled = settled_counts(database_url)
    if args.soak:
        splice(output, SOAK_BEGIN, SOAK_END, soak_section(results[0].sides[CREDITGATE], results[0].direct))
    else:
        lines = report(args, results, litellm_version, billed, unsettled)
        splice(output, BEGIN, END, lines)
        print("\n".join(lines), flush=True)
    print(f"bench: wrote {output} in {time.monotonic() - started:.0f} s", flush=True)


def selected(scenario: Scenario, words: list[str]) -> bool:
    """`--only c1` picks the concurrency-1 scenario, not the c16 ones: whole words of the name."""
    return any(re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", scenario.name) for word in words)


def settled_counts(database_url: str) -> tuple[int, int]:
    rows = asyncio.run(_sql(database_url, "SELECT status, count(*) AS n FROM generations GROUP BY status"))
    counts = {row["status"]: row["n"] for row in rows}
    return sum(counts.values()), counts.get("running", 0)


def report(
    args: argparse.Namespace, results: list[Measured], litellm_version: str | None, billed: int, unsettled: int
) -> list[str]:
    command = " ".join(["python -m bench.run", *sys.argv[1:]]) if sys.argv[1:] else "make bench"
    workers = f"{args.workers} worker{'s' * (args.workers > 1)}"
    peer = (
        f", then through the LiteLLM proxy {litellm_version} ({workers}, no database, no billing)"
        if litellm_version
        else ""
    )
    comparison = side_by_side(results)
    return [
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} — {machine_facts()}. Each scenario: "
        f"{args.warmup:.0f} s warmup, {args.duration:.0f} s measured, first against the fake upstream directly, then "
        f"through creditgate (`/v1/chat/completions`, {workers}, every generation pre-charged and "
        f"settled in PostgreSQL){peer}. The load generator, the upstream, PostgreSQL and the gateways share the "
        "machine; *machine % busy* (of "
        f"{100 * (os.cpu_count() or 1)} %) includes anything else running on it. *CPU cost*: CPU seconds of the "
        "gateway's processes over the measured window per relayed chunk (streams) or per generation completed "
        "(non-stream).",
        "",
        *table(results),
        *(["", "creditgate beside LiteLLM, same run:", "", *comparison] if comparison else []),
        "",
        "Targets (SPEC §10):",
        "",
        *verdicts({m.scenario.name: m for m in results}, billed, unsettled),
    ]


if __name__ == "__main__":
    main()
