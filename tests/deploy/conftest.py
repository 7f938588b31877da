"""One deployment for the whole package: a private PostgreSQL with a throwaway database, PgBouncer, Redis, three
production replicas and Caddy, as compose.yaml runs them. The modules run in name order and the replica SIGKILL
test is the last one of the last module (it leaves two replicas)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.postgres.engine import asyncpg_url
from application.accounts.register import Registration
from entrypoints.cli import create_admin
from tests.support.api import PASSWORD, bearer, login, register
from tests.support.cluster import Cluster, running_cluster
from tests.support.database import throwaway_database
from tests.support.settings import suite_settings
from tests.support.topology import (
    Caddy,
    Daemon,
    PrivatePostgres,
    caddy,
    pgbouncer,
    pgbouncer_url,
    private_postgres,
    redis_server,
)

USERS = 3  # each registration and login hashes with production argon2: seconds on a busy machine
LOGIN_FAILURE_LIMIT = 2  # per username; per client address it is three times that
REPLICA_ENVIRONMENT = {
    "CREDITGATE_ENV": "production",
    "ARGON2_PROFILE": "rfc9106_low_memory",  # production refuses the cheapest profile
    "TRUSTED_PROXIES": "127.0.0.1",  # Caddy
    "DB_PGBOUNCER": "true",
    "DB_TIMEOUT_SECONDS": "2",
    "RATE_LIMIT_USER_RPM": "100000",  # on, so every request asks Redis; never reached
    "LOGIN_FAILURE_LIMIT": str(LOGIN_FAILURE_LIMIT),
    "SIMULATOR_TOKEN_DELAY_MS": "5",
}


@dataclass
class Deployment:
    postgres: PrivatePostgres
    pgbouncer: Daemon
    redis: Daemon
    cluster: Cluster
    caddy: Caddy
    database_url: str
    """Straight to PostgreSQL, for the audits and the CLI (migrations do the same in compose)."""

    def client(self, *, local_address: str | None = None, timeout: float = 15) -> httpx.AsyncClient:
        """A client of Caddy's HTTPS address that trusts its local CA (`local_address`: the client's loopback
        address, another than Caddy's own 127.0.0.1)."""
        transport = httpx.AsyncHTTPTransport(verify=self.caddy.trust(), local_address=local_address)
        limits = httpx.Limits(max_connections=64)
        return httpx.AsyncClient(base_url=self.caddy.url, transport=transport, timeout=timeout, limits=limits)


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("deploy")
    with (
        private_postgres() as postgres,
        throwaway_database(postgres.url) as database_url,
    ):
        database = database_url.rsplit("/", 1)[1].split("?", 1)[0]
        with (
            pgbouncer(postgres, database) as bouncer,
            redis_server(workdir) as redis,
            running_cluster(
                3,
                pgbouncer_url(bouncer, database),
                workdir,
                REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
                RATE_LIMIT_REDIS_PREFIX=f"creditgate-deploy-{uuid.uuid4().hex}:",
                **REPLICA_ENVIRONMENT,
            ) as cluster,
            caddy([url.removeprefix("http://") for url in cluster.urls], workdir) as proxy,
        ):
            yield Deployment(postgres, bouncer, redis, cluster, proxy, database_url)


@pytest.fixture(scope="package")
async def engine(deployment: Deployment) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(deployment.database_url), pool_size=2, pool_pre_ping=True)
    yield engine
    await engine.dispose()


@dataclass
class Accounts:
    admin: str
    users: list[str]


@pytest.fixture(scope="package")
async def accounts(deployment: Deployment) -> Accounts:
    """An admin and USERS clients with 100000 credits each, all made through Caddy."""
    await create_admin(suite_settings(deployment.database_url), Registration(username="root", password=PASSWORD))
    async with deployment.client() as http:
        admin = (await login(http, "root"))["access_token"]

        async def funded(index: int) -> str:
            user = await register(http, f"load{index}")
            body = {"amount": "100000", "reason": "deploy suite"}
            funding = await http.post(f"/api/v1/admin/users/{user['id']}/balance", json=body, headers=bearer(admin))
            assert funding.status_code == 200, funding.text
            return str((await login(http, f"load{index}"))["access_token"])

        users = await asyncio.gather(*(funded(index) for index in range(USERS)))
    return Accounts(admin, list(users))
