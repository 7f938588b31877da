"""What one generation costs PostgreSQL: statements, commits and writing transactions, by API and streaming mode.

    .venv/bin/python -m bench.db_statements --server postgresql://postgres@127.0.0.1:55432/postgres

The server must load pg_stat_statements (`shared_preload_libraries`) and run nothing else: the writing
transactions are read from its transaction id counter. A throwaway database is migrated, `creditgate serve` (one
worker, the simulator, 64 output tokens) is started on it with the reaper and housekeeping pushed out of the
window, and each scenario runs `--generations` requests one after another after a warm-up; pg_stat_statements is
reset before each. `--pgbouncer` runs `serve` with DB_PGBOUNCER=true (no per-process caches: every request reads
its principal and model). Prints one JSON object per scenario; docs/scaling.md ("Past one database") has the
figures.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.processes import free_port
from entrypoints.cli import run_migrations

CREDITGATE = str(Path(sys.executable).with_name("creditgate"))
PASSWORD = "statements-password"
MESSAGES = [{"role": "user", "content": "Count the statements of one generation"}]
MAX_TOKENS = 64
WARM_UP = 5
STATS_FLUSH_SECONDS = 12  # a backend reports its commits to pg_stat_database within 10 s of going idle


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    stream: bool
    key_scoped: bool = False


SCENARIOS = (
    Scenario("native", "/api/v1/generations", stream=False),
    Scenario("native stream", "/api/v1/generations", stream=True),
    Scenario("/v1 chat", "/v1/chat/completions", stream=False),
    Scenario("/v1 chat stream", "/v1/chat/completions", stream=True),
    Scenario("/v1 chat stream, key-scoped token", "/v1/chat/completions", stream=True, key_scoped=True),
)


def _with_database(server: str, name: str) -> str:
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def _throwaway_database(server: str) -> Iterator[str]:
    name = f"cg_statements_{uuid.uuid4().hex[:8]}"
    asyncio.run(_execute(server, f'CREATE DATABASE "{name}"'))
    url = _with_database(server, name)
    try:
        run_migrations(url)
        yield url
    finally:
        asyncio.run(_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def _serving(database_url: str, *, pgbouncer: bool) -> Iterator[str]:
    port = free_port()
    environment = os.environ | {
        "DATABASE_URL": database_url,
        "CREDITGATE_ENV": "development",
        "JWT_SECRET": secrets.token_urlsafe(32),
        "SECRET_KEYS": "c3RhdGVtZW50cy1tYXN0ZXIta2V5LWZvci1iZW5jaC0",
        "ARGON2_PROFILE": "cheapest",
        "LOCAL_MODEL": "off",
        "SIMULATOR_TOKEN_DELAY_MS": "2",
        "RATE_LIMIT_USER_RPM": "0",
        "RATE_LIMIT_KEY_RPM": "0",
        "REAPER_INTERVAL_SECONDS": "3600",
        "HOUSEKEEPING_INTERVAL_SECONDS": "86400",
        "DB_PGBOUNCER": "true" if pgbouncer else "false",
        "LOG_LEVEL": "warning",
    }
    with tempfile.TemporaryDirectory(prefix="cg-statements-") as workdir:
        environment["DATA_DIR"] = workdir
        admin = [CREDITGATE, "create-admin", "--username", "statements-admin", "--password", PASSWORD]
        subprocess.run(admin, env=environment, check=True, stdout=subprocess.DEVNULL)  # noqa: S603  # our own CLI
        serve = [CREDITGATE, "serve", "--port", str(port), "--no-migrate"]
        server = subprocess.Popen(serve, env=environment, cwd=workdir)  # noqa: S603
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, server)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("creditgate serve exited")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("creditgate serve never became ready")


@dataclass(frozen=True)
class Tokens:
    user: str
    key_scoped: str


def _tokens(http: httpx.Client) -> Tokens:
    """A funded client, its token, and a key-scoped token of an API key of its own (HMAC login)."""
    login = {"username": "statements-admin", "password": PASSWORD}
    admin = {"authorization": f"Bearer {http.post('/api/v1/auth/login', json=login).json()['access_token']}"}
    user = http.post("/api/v1/auth/register", json={"username": "statements-user", "password": PASSWORD}).json()
    funded = http.post(
        f"/api/v1/admin/users/{user['id']}/balance", json={"amount": "1000000", "reason": "bench"}, headers=admin
    )
    funded.raise_for_status()
    client = http.post("/api/v1/auth/login", json={"username": "statements-user", "password": PASSWORD}).json()
    typeid = {"scale": 10, "system": "s", "user": "{reference} {text}", "model": "dr14", "llm": "simulator"}
    http.post("/api/v1/types", json=typeid | {"typeid": "tid_statements", "description": ""}, headers=admin)
    key = http.post("/api/v1/keys", json={"user_id": user["id"], "typeid": "tid_statements"}, headers=admin).json()
    timestamp, nonce = int(time.time()), secrets.token_urlsafe(24)
    message = f"{key['api_key']}\nstatements-user\n{timestamp}\n{nonce}".encode()
    signature = hmac.new(key["secret_key"].encode(), message, hashlib.sha256).hexdigest()
    signed = {
        "api_key": key["api_key"],
        "username": "statements-user",
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": signature,
    }
    scoped = http.post("/api/v1/auth", json=signed)
    scoped.raise_for_status()
    return Tokens(client["access_token"], scoped.json()["access_token"])


def _generate(http: httpx.Client, scenario: Scenario, token: str) -> None:
    body = {"model": "dr14", "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": scenario.stream}
    headers = {"authorization": f"Bearer {token}"}
    with http.stream("POST", scenario.path, json=body, headers=headers) as response:
        response.read()
        if response.status_code != 200:
            raise SystemExit(f"{scenario.name}: {response.status_code} {response.text}")


async def _counters(server: str, database: str) -> tuple[int, int]:
    """The database's committed transactions and the server's next transaction id (one per writing transaction)."""
    connection = await asyncpg.connect(server)
    try:
        commits = await connection.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database)
        next_xid = await connection.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        return int(commits), int(next_xid)
    finally:
        await connection.close()


async def _statements(server: str, database: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(server)
    try:
        rows = await connection.fetch(
            """
            SELECT calls, total_exec_time, rows, query FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) ORDER BY calls DESC, query
            """,
            database,
        )
        return [dict(row) for row in rows]
    finally:
        await connection.close()


def _measure(server: str, database: str, url: str, scenario: Scenario, tokens: Tokens, count: int) -> dict[str, Any]:
    token = tokens.key_scoped if scenario.key_scoped else tokens.user
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(WARM_UP):
            _generate(http, scenario, token)
        time.sleep(STATS_FLUSH_SECONDS)
        asyncio.run(_execute(server, "SELECT pg_stat_statements_reset()"))
        commits_before, xid_before = asyncio.run(_counters(server, database))
        for _ in range(count):
            _generate(http, scenario, token)
    _, xid_after = asyncio.run(_counters(server, database))
    time.sleep(STATS_FLUSH_SECONDS)
    commits_after, _ = asyncio.run(_counters(server, database))
    statements = asyncio.run(_statements(server, database))
    return {
        "scenario": scenario.name,
        "generations": count,
        "statements_per_generation": round(sum(s["calls"] for s in statements) / count, 2),
        "sent_per_generation": round(sum(s["calls"] for s in statements if not _foreign_key_check(s)) / count, 2),
        "commits_per_generation": round((commits_after - commits_before) / count, 2),
        "writing_transactions_per_generation": round((xid_after - xid_before) / count, 2),
        "server_ms_per_generation": round(sum(s["total_exec_time"] for s in statements) / count, 3),
        "by_statement": [
            {
                "per_generation": round(s["calls"] / count, 2),
                "mean_ms": round(s["total_exec_time"] / s["calls"], 4),
                "query": " ".join(s["query"].split())[:160],
            }
            for s in statements
        ],
    }


def _foreign_key_check(statement: dict[str, Any]) -> bool:
    """PostgreSQL's own `SELECT 1 FROM ONLY … FOR KEY SHARE`, run inside an insert or update: no round trip."""
    return " FROM ONLY " in statement["query"] and "FOR KEY SHARE" in statement["query"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="a maintenance database URL of a pg_stat_statements server")
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--pgbouncer", action="store_true", help="serve with DB_PGBOUNCER=true")
    args = parser.parse_args()
    with _throwaway_database(args.server) as database_url, _serving(database_url, pgbouncer=args.pgbouncer) as url:
        database = database_url.rpartition("/")[2]
        with httpx.Client(base_url=url, timeout=30) as http:
            tokens = _tokens(http)
        for scenario in SCENARIOS:
            result = _measure(args.server, database, url, scenario, tokens, args.generations)
            print(json.dumps(result | {"pgbouncer": args.pgbouncer}), flush=True)


if __name__ == "__main__":
    main()
