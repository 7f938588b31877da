"""`make bench`: creditgate against a direct call of the same fake upstream, in one run, into docs/benchmarks.md.

A throwaway database on DATABASE_URL's server (else TEST_DATABASE_URL's, else the embedded pgserver of `make run`)
is migrated and seeded through the public API: an admin, catalog models on the `openai` provider pointing at
`bench/upstream.py`, funded users. Each scenario runs `bench/load.py` in its own process, first against the
upstream, then through `creditgate serve`, while the creditgate process tree is sampled from /proc.
`--soak SECONDS` runs only the memory soak and records it in its own section of the same file.

Exit status: 0 when the run completed (missed targets are stated in the table), 1 when the run itself failed.
"""

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import msgspec
from sqlalchemy.engine import make_url

from bench.load import LoadResult

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
ADMIN_PASSWORD = "bench-admin-password"
USER_PASSWORD = "bench-user-password"
FUNDS = "1000000"
PRICING = {"unit_tokens": 100, "input_credits": "20", "output_credits": "20"}  # as the default `dr14`
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SOAK_BEGIN, SOAK_END = "<!-- soak:begin -->", "<!-- soak:end -->"


@dataclass(frozen=True)
class Scenario:
    name: str
    upstream_model: str  # the upstream's behaviour, see bench/upstream.py
    stream: bool
    concurrency: int
    workers: int


SLOW = Scenario("non-stream, upstream 20 ms, c16", "d20-n16-i0", stream=False, concurrency=16, workers=1)
INSTANT_16 = Scenario("non-stream, instant upstream, c16", "d0-n16-i0", stream=False, concurrency=16, workers=2)
INSTANT_64 = Scenario("non-stream, instant upstream, c64", "d0-n16-i0", stream=False, concurrency=64, workers=2)
STREAM_64 = Scenario("stream 50 chunks x 5 ms, c64", "d0-n50-i5", stream=True, concurrency=64, workers=2)
STREAM_256 = Scenario("stream 50 chunks x 5 ms, c256", "d0-n50-i5", stream=True, concurrency=256, workers=2)
SCENARIOS = (SLOW, INSTANT_16, INSTANT_64, STREAM_64, STREAM_256)
SOAK = Scenario("soak: stream 50 chunks x 5 ms, c256", "d0-n50-i5", stream=True, concurrency=256, workers=2)


class BenchError(Exception):
    """The run itself failed (not a missed target)."""


# --- /proc sampling (psutil is not a dependency) ---------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


class Sampler:
    """CPU and RSS of a process tree over a window; RSS polled on a thread so the peak is seen."""

    def __init__(self, root: int, interval_s: float = 0.5) -> None:
        self._root = root
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self.rss_series: list[tuple[float, int]] = []
        self.rss_before = rss_kib(process_tree(root))

    def __enter__(self) -> "Sampler":
        self._pids = process_tree(self._root)
        self._cpu0, self._wall0 = cpu_seconds(self._pids), time.perf_counter()
        self._busy0 = machine_busy_seconds()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_percent = 100 * (cpu_seconds(self._pids) - self._cpu0) / self.wall_s
        busy1 = machine_busy_seconds()
        self.machine_percent = 100 * (busy1[0] - self._busy0[0]) / self.wall_s

    def _poll(self) -> None:
        started = time.perf_counter()
        while not self._stop.wait(self._interval):
            self.rss_series.append((time.perf_counter() - started, rss_kib(self._pids)))

    @property
    def rss_peak(self) -> int:
        return max((rss for _, rss in self.rss_series), default=self.rss_before)


# --- processes ------------------------------------------------------------------------------------------------


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
    for model in sorted({s.upstream_model for s in (*SCENARIOS, SOAK)}):
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


@dataclass
class Measured:
    scenario: Scenario
    direct: LoadResult
    gateway: LoadResult
    cpu_percent: float
    machine_percent: float
    rss_before_kib: int
    rss_peak_kib: int
    rss_series: list[tuple[float, int]] = field(default_factory=list)


def load(url: str, tokens: list[str], scenario: Scenario, warmup_s: float, duration_s: float) -> LoadResult:
    args = [str(VENV_BIN / "python"), "-m", "bench.load", "--url", url, "--model", scenario.upstream_model]
    args += ["--concurrency", str(scenario.concurrency), "--warmup", str(warmup_s), "--duration", str(duration_s)]
    args += ["--stream"] * scenario.stream
    for token in tokens:
        args += ["--token", token]
    done = subprocess.run(args, capture_output=True, cwd=ROOT, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"the load generator failed: {done.stderr.decode()[-2000:]}")
    result = msgspec.json.decode(done.stdout, type=LoadResult)
    if result.requests == 0:
        raise BenchError(f"no request completed against {url}: {result.first_error}")
    return result


@dataclass
class Gateway:
    base: str
    root_pid: int
    tokens: list[str]


def measure(
    scenario: Scenario, upstream: str, gateway: Gateway, warmup_s: float, duration_s: float, direct_s: float
) -> Measured:
    print(f"  {scenario.name}: direct …", flush=True)
    direct = load(f"{upstream}/chat/completions", [], scenario, warmup_s, direct_s)
    print(f"  {scenario.name}: through creditgate …", flush=True)
    sampler = Sampler(gateway.root_pid)
    outcome: list[LoadResult] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            load(f"{gateway.base}/v1/chat/completions", gateway.tokens, scenario, warmup_s, duration_s)
        )
    )
    thread.start()
    time.sleep(warmup_s)
    with sampler:
        thread.join(timeout=duration_s)
    thread.join()
    if not outcome:
        raise BenchError(f"{scenario.name}: the load generator failed (see above)")
    return Measured(
        scenario,
        direct,
        outcome[0],
        sampler.cpu_percent,
        sampler.machine_percent,
        sampler.rss_before,
        sampler.rss_peak,
        sampler.rss_series,
    )


# --- the report -----------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _row(label: str, r: LoadResult, cpu: str, cost: str, rss: str) -> str:
    chunks = f"{r.chunks_per_s:,.0f}" if r.stream else "-"
    lat, ttfb = r.latency_ms, r.ttfb_ms
    return (
        f"| {label} | {r.rps:,.0f} | {_ms(lat['p50'])} | {_ms(lat['p99'])} | {_ms(ttfb['p50'])} | {_ms(ttfb['p99'])} "
        f"| {chunks} | {r.errors} | {cpu} | {cost} | {rss} |"
    )


def cpu_cost(m: Measured) -> str:
    """creditgate CPU per request (per chunk for streams): what contention on the machine changes least."""
    cpu_ms_per_s = 10 * m.cpu_percent
    if m.scenario.stream:
        return f"{1000 * cpu_ms_per_s / m.gateway.chunks_per_s:.0f} µs/chunk" if m.gateway.chunks_per_s else "-"
    return f"{cpu_ms_per_s / m.gateway.rps:.2f} ms/req" if m.gateway.rps else "-"


def table(results: list[Measured]) -> list[str]:
    lines = [
        "| scenario · target | req/s | latency p50 ms | p99 ms | TTFB p50 ms | TTFB p99 ms | chunks/s | errors "
        "| creditgate CPU % | creditgate CPU cost | creditgate RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        s = m.scenario
        lines.append(_row(f"{s.name} · direct", m.direct, "-", "-", "-"))
        label = f"{s.name} · creditgate ({s.workers} worker{'s' * (s.workers > 1)})"
        lines.append(_row(label, m.gateway, f"{m.cpu_percent:.0f}", cpu_cost(m), f"{m.rss_peak_kib / 1024:.0f}"))
        g, d = m.gateway, m.direct
        ratio = f"chunk rate x{g.chunks_per_s / d.chunks_per_s:.2f}" if s.stream else f"req/s x{g.rps / d.rps:.2f}"
        lines.append(
            f"| {s.name} · creditgate - direct | {ratio} | +{g.latency_ms['p50'] - d.latency_ms['p50']:.1f} "
            f"| +{g.latency_ms['p99'] - d.latency_ms['p99']:.1f} | +{g.ttfb_ms['p50'] - d.ttfb_ms['p50']:.1f} "
            f"| +{g.ttfb_ms['p99'] - d.ttfb_ms['p99']:.1f} | | | machine {m.machine_percent:.0f} % busy | | |"
        )
    return lines


def _verdict(met: bool, what: str, why: str) -> str:
    return f"- **{'met' if met else 'missed'}** — {what}" + ("" if met else f" {why}")


def verdicts(results: dict[Scenario, Measured], billed: int, unsettled: int) -> list[str]:
    lines = []
    if (m := results.get(SLOW)) is not None:
        p50 = m.gateway.latency_ms["p50"] - m.direct.latency_ms["p50"]
        p99 = m.gateway.latency_ms["p99"] - m.direct.latency_ms["p99"]
        lines.append(
            _verdict(
                p50 <= 4 and p99 <= 15,
                f"(a) upstream 20 ms, c16, one worker: added p50 {p50:.1f} ms (≤ 4), p99 {p99:.1f} ms (≤ 15).",
                f"Missed by {max(p50 - 4, 0):.1f} ms p50 / {max(p99 - 15, 0):.1f} ms p99; the single worker ran at "
                f"{m.cpu_percent:.0f} % CPU while the machine was {m.machine_percent:.0f} % busy (of 200 %).",
            )
        )
    if (m := results.get(INSTANT_64)) is not None:
        rps = m.gateway.rps
        lines.append(
            _verdict(
                rps >= 400 and unsettled == 0,
                f"(b) instant upstream, two workers, c64: {rps:.0f} billed generations/s (≥ 400); {billed} generations "
                f"pre-charged and settled in PostgreSQL over the whole run, {unsettled} left unsettled.",
                f"Missed by {max(400 - rps, 0):.0f}/s: creditgate used {m.cpu_percent:.0f} % CPU of 200 %; the load "
                "generator, the upstream and PostgreSQL share the same two cores "
                f"(machine {m.machine_percent:.0f} % busy).",
            )
        )
    if (m := results.get(STREAM_256)) is not None:
        ratio = m.gateway.chunks_per_s / m.direct.chunks_per_s
        ttfb = m.gateway.ttfb_ms["p50"] - m.direct.ttfb_ms["p50"]
        lines.append(
            _verdict(
                ratio >= 0.9 and ttfb <= 5,
                f"(c) 256 streams: chunk rate {ratio:.0%} of direct (≥ 90 %), TTFB +{ttfb:.1f} ms p50 (≤ 5).",
                f"creditgate used {m.cpu_percent:.0f} % CPU of 200 % re-encoding "
                f"{m.gateway.chunks_per_s:,.0f} chunks/s while the load generator parsed them on the same cores "
                f"(machine {m.machine_percent:.0f} % busy).",
            )
        )
        per_stream = (m.rss_peak_kib - m.rss_before_kib) / m.scenario.concurrency
        lines.append(
            _verdict(
                per_stream <= 64,
                f"(d) memory: {per_stream:.0f} KiB per open stream (≤ 64; peak RSS of the creditgate processes "
                f"during 256 streams minus their RSS just before). Flat over 5 minutes: see the soak below.",
                "Missed.",
            )
        )
    return lines


def soak_section(m: Measured) -> list[str]:
    series = m.rss_series
    minute = [rss for t, rss in series if t <= 60] or [m.rss_before_kib]
    last = [rss for t, rss in series if t >= series[-1][0] - 60] if series else [m.rss_before_kib]
    growth = (sum(last) / len(last) - sum(minute) / len(minute)) / 1024
    flat = growth <= 0.05 * sum(minute) / len(minute) / 1024 + 2
    points = ", ".join(f"{t:.0f} s: {rss / 1024:.0f}" for t, rss in series[:: max(1, len(series) // 10)])
    return [
        f"{SOAK_BEGIN}",
        f"Soak (`make soak`, measured {time.strftime('%Y-%m-%d')}): 256 concurrent streams (50 chunks x 5 ms) through "
        f"two workers for {m.gateway.duration_s:.0f} s; {m.gateway.requests:,} streams, {m.gateway.errors} errors"
        + (f" (first: `{m.gateway.first_error[:160]}`)" if m.gateway.first_error else "")
        + f", chunk rate {m.gateway.chunks_per_s:,.0f}/s (direct: {m.direct.chunks_per_s:,.0f}/s).",
        "",
        f"- RSS of the creditgate processes (MiB) — {points}.",
        f"- First minute {sum(minute) / len(minute) / 1024:.1f} MiB on average, last minute "
        f"{sum(last) / len(last) / 1024:.1f} MiB: growth {growth:+.1f} MiB → **{'flat' if flat else 'growing'}**.",
        f"{SOAK_END}",
    ]


def splice(path: Path, begin: str, end: str, lines: list[str]) -> None:
    """Replace the generated region of docs/benchmarks.md; the hand-written analysis around it stays."""
    block = "\n".join(lines) if lines[0] == begin else "\n".join([begin, *lines, end])
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n\n{SOAK_BEGIN}\n{SOAK_END}\n"
    head, found, rest = text.partition(begin)
    if not found:
        path.write_text(text.rstrip("\n") + "\n\n" + block + "\n")
        return
    _, _, tail = rest.partition(end)
    path.write_text(head + block + tail)


def machine_facts() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


# --- orchestration --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def gateway(
    env: dict[str, str], workers: int, log: Path, users: int, seed_it: bool, tokens: list[str], profile: Path | None
) -> Iterator[Gateway]:
    port = free_port()
    args = [str(VENV_BIN / "creditgate"), "serve", "--no-migrate", "--port", str(port), "--workers", str(workers)]
    if profile is not None and workers == 1:  # one worker serves in the main process: cProfile sees every request
        args = [str(VENV_BIN / "python"), "-m", "cProfile", "-o", str(profile), *args]
    deaths_before = log.read_text().count("died")
    with running(args, env, log) as process:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health/ready", 60, process)
        yield Gateway(base, process.pid, seed(base, users) if seed_it else tokens)
        if (deaths := log.read_text().count("died") - deaths_before) > 0:
            raise BenchError(f"{deaths} creditgate worker(s) died and were respawned during the run (see {log})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario and side")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--users", type=int, default=16, help="funded users the load is spread over (1: one wallet's ceiling)"
    )
    parser.add_argument("--soak", type=float, default=0, help="run only the memory soak for this many seconds")
    parser.add_argument("--only", action="append", default=[], help="scenario name substring (repeatable)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--profile", type=Path, help="run the one-worker server under cProfile, stats to this file")
    args = parser.parse_args()
    try:
        run(args)
    except BenchError as error:
        sys.exit(f"bench: {error}")


def run(args: argparse.Namespace) -> None:
    scenarios = (
        (SOAK,) if args.soak else tuple(s for s in SCENARIOS if not args.only or any(o in s.name for o in args.only))
    )
    workdir = Path(tempfile.mkdtemp(prefix="cg-bench-"))
    log = workdir / "processes.log"
    print(f"bench: logs in {log}", flush=True)
    with database_server() as server_url, throwaway_database(server_url) as database_url:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        env = os.environ | {
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
            # Per worker; no overflow churn at these concurrencies, and 2 x 35 stays under PostgreSQL's default 100.
            "DB_POOL_SIZE": "30",
            "DB_MAX_OVERFLOW": "5",
        }
        creditgate = str(VENV_BIN / "creditgate")
        subprocess.run([creditgate, "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)  # noqa: S603
        admin = [creditgate, "create-admin", "--username", "bench-admin", "--password", ADMIN_PASSWORD]
        subprocess.run(admin, env=env, check=True, capture_output=True, cwd=ROOT)  # noqa: S603
        results: dict[Scenario, Measured] = {}
        tokens: list[str] = []
        upstream_args = [str(VENV_BIN / "python"), "-m", "bench.upstream", "--port", str(upstream_port)]
        with running(upstream_args, env, log) as upstream_process:
            wait_for_port(upstream_port, upstream_process)
            for workers in sorted({s.workers for s in scenarios}):
                print(f"creditgate serve --workers {workers}", flush=True)
                with gateway(env, workers, log, args.users, not tokens, tokens, args.profile) as gw:
                    tokens = gw.tokens
                    for scenario in (s for s in scenarios if s.workers == workers):
                        duration = args.soak or args.duration
                        results[scenario] = measure(scenario, upstream, gw, args.warmup, duration, args.duration)
        billed, unsettled = settled_counts(database_url)
    if args.soak:
        splice(args.output, SOAK_BEGIN, SOAK_END, soak_section(results[SOAK]))
    else:
        report(args, list(results.values()), verdicts(results, billed, unsettled))
    print(f"bench: wrote {args.output}", flush=True)


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError("the fake upstream exited")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise BenchError("the fake upstream did not start")


def settled_counts(database_url: str) -> tuple[int, int]:
    rows = asyncio.run(_sql(database_url, "SELECT status, count(*) AS n FROM generations GROUP BY status"))
    counts = {row["status"]: row["n"] for row in rows}
    return sum(counts.values()), counts.get("running", 0)


def report(args: argparse.Namespace, results: list[Measured], verdict_lines: list[str]) -> None:
    command = "make bench" if not args.only else f"python -m bench.run --only {' --only '.join(args.only)}"
    lines = [
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} — {machine_facts()}. Each scenario: "
        f"{args.warmup:.0f} s warmup, {args.duration:.0f} s measured, first against the fake upstream directly, then "
        f"through creditgate (`/v1/chat/completions`, {args.users} funded user{'s' * (args.users > 1)}, "
        "every request pre-charged and settled in PostgreSQL). The load generator, the upstream, PostgreSQL and "
        "creditgate share the machine; *machine % busy* (of 200 %) includes anything else running on it.",
        "",
        *table(results),
        "",
        "Targets (SPEC §10):",
        "",
        *verdict_lines,
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    splice(args.output, BEGIN, END, lines)


if __name__ == "__main__":
    main()
