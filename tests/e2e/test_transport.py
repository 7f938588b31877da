"""HTTPS as an operator runs it (RELIABILITY T1 to T4, A6): two `creditgate serve` processes in production mode, one
serving TLS with a `trustme` certificate and trusting only 10.0.0.1 as a proxy, one on plain HTTP behind a "proxy" on
127.0.0.1. Clients bound to 127.0.0.2 play an untrusted peer on the same machine."""

import asyncio
import json
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trustme
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.settings import Settings
from tests.support.canaries import representative_flow
from tests.support.cluster import CLUSTER_ENVIRONMENT, CREDITGATE, free_port
from tests.support.tls import allow_old_versions, write_server_cert

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

HSTS_MAX_AGE = 31536000
PRODUCTION = {
    "CREDITGATE_ENV": "production",
    "ARGON2_PROFILE": "rfc9106_low_memory",
    "LOG_LEVEL": "info",
    "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "1",
}
UNTRUSTED_PEER = "127.0.0.2"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Servers:
    tls: Server
    proxied: Server
    ca: trustme.CA
    https_responses: list[httpx.Response] = field(default_factory=list)
    plain_responses: list[httpx.Response] = field(default_factory=list)

    def client(
        self, base_url: str, *, https: bool, verify: ssl.SSLContext | bool = False, local_address: str | None = None
    ) -> httpx.AsyncClient:
        """Every response is kept for the module's HSTS tally (T2)."""
        responses = self.https_responses if https else self.plain_responses

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            responses.append(response)

        transport = httpx.AsyncHTTPTransport(verify=verify, local_address=local_address)
        return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30, event_hooks={"response": [keep]})

    def trusting_client(self) -> httpx.AsyncClient:
        return self.client(self.tls.url, https=True, verify=self.ca_context())

    def ca_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def servers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    workdir = tmp_path_factory.mktemp("transport")
    ca = trustme.CA()
    certfile, keyfile = write_server_cert(ca, workdir)
    inherited = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "DATABASE_URL"))}
    environment = inherited | CLUSTER_ENVIRONMENT | PRODUCTION
    environment |= {"DATABASE_URL": database_url, "DATA_DIR": str(workdir / "data")}
    tls = _spawn(
        workdir,
        environment | {"TRUSTED_PROXIES": "10.0.0.1"},
        "--ssl-certfile",
        str(certfile),
        "--ssl-keyfile",
        str(keyfile),
    )
    proxied = _spawn(workdir, environment | {"TRUSTED_PROXIES": "127.0.0.1"})
    try:
        running = Servers(tls, proxied, ca)
        context = running.ca_context()
        for server in (tls, proxied):
            _wait_ready(server, context)
        yield running
    finally:
        for server in (tls, proxied):
            server.process.terminate()
        for server in (tls, proxied):
            server.process.wait(timeout=20)


def _spawn(workdir: Path, environment: dict[str, str], *args: str) -> Server:
    port = free_port()
    scheme = "https" if args else "http"
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CREDITGATE, "serve", "--port", str(port), "--no-migrate", *args],
            env=environment,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(f"{scheme}://127.0.0.1:{port}", process, log_path)


def _wait_ready(server: Server, context: ssl.SSLContext, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"serve exited: {server.log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/health/ready", verify=context, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve never became ready: {server.log_path.read_text()[-2000:]}")


@pytest.fixture
async def https(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with servers.trusting_client() as client:
        yield client


def _old_client_context(ca: trustme.CA, newest: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    allow_old_versions(context, newest)  # the client may offer TLS 1.1: refusing it is the server's job
    return context


async def test_t1_tls_with_a_verified_certificate_is_served(https: httpx.AsyncClient) -> None:
    response = await https.get("/api-docs/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1")
    assert (await https.get("/api/v1/models")).json()["code"] == "unauthorized"  # the app, not a refusal


async def test_t1_a_tls_1_1_handshake_fails_where_the_same_client_at_1_2_succeeds(servers: Servers) -> None:
    url = f"{servers.tls.url}/health/live"
    async with httpx.AsyncClient(verify=_old_client_context(servers.ca, ssl.TLSVersion.TLSv1_1)) as tls11:
        with pytest.raises(httpx.ConnectError):
            await tls11.get(url)
    async with httpx.AsyncClient(verify=_old_client_context(servers.ca, ssl.TLSVersion.TLSv1_2)) as tls12:
        assert (await tls12.get(url)).status_code == 200


async def test_t1_plain_http_to_the_tls_port_is_not_served(servers: Servers) -> None:
    plain_url = servers.tls.url.replace("https://", "http://")
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.TransportError):
            await plain.get(f"{plain_url}/health/live")


async def test_t3_plain_http_from_an_untrusted_peer_is_refused_whatever_it_claims(servers: Servers) -> None:
    """The peer is 127.0.0.2; the server trusts only the proxy on 127.0.0.1."""
    async with servers.client(servers.proxied.url, https=False, local_address=UNTRUSTED_PEER) as plain:
        for headers in (
            {},
            {"X-Forwarded-Proto": "https"},
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"},
        ):
            for method, path in (("GET", "/api/v1/me"), ("POST", "/api/v1/auth/login"), ("GET", "/api-docs")):
                response = await plain.request(method, path, headers=headers)
                assert response.status_code == 403
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["x-request-id"]
                assert response.json() == {
                    "type": "about:blank",
                    "title": "Forbidden",
                    "status": 403,
                    "detail": "This API is served over HTTPS only.",
                    "code": "https_required",
                }
        assert (await plain.get("/health/live")).status_code == 200
        assert (await plain.get("/health/ready")).status_code == 200


async def test_t3_the_configured_proxy_saying_https_is_served(servers: Servers) -> None:
    async with servers.client(servers.proxied.url, https=True) as proxy:
        response = await proxy.get("/api-docs/openapi.json", headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith(f"max-age={HSTS_MAX_AGE}")
    async with servers.client(servers.proxied.url, https=False) as proxy:
        for headers in ({}, {"X-Forwarded-Proto": "http"}):
            response = await proxy.get("/api/v1/models", headers=headers)
            assert response.status_code == 403
            assert response.json()["code"] == "https_required"


async def test_a6_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    servers: Servers, https: httpx.AsyncClient, clean_db: AsyncEngine
) -> None:
    """One registration per address per hour: the TLS server trusts only 10.0.0.1, so both come from 127.0.0.1
    (whose earlier registrations in this hour, by other suites, `clean_db` forgets)."""
    for index, status in enumerate((201, 429)):
        body = {"username": f"spoof-{uuid.uuid4().hex[:8]}", "password": "long enough password"}
        response = await https.post(
            "/api/v1/auth/register", json=body, headers={"X-Forwarded-For": f"203.0.113.{index + 1}"}
        )
        assert response.status_code == status, response.text


async def test_a6_a_trusted_proxy_s_forwarded_for_is_the_client_address(servers: Servers) -> None:
    async with servers.client(servers.proxied.url, https=True) as proxy:
        statuses = []
        for address in ("198.51.100.1", "198.51.100.2", "198.51.100.1"):
            body = {"username": f"fwd-{uuid.uuid4().hex[:8]}", "password": "long enough password"}
            headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": address}
            statuses.append((await proxy.post("/api/v1/auth/register", json=body, headers=headers)).status_code)
    assert statuses == [201, 201, 429]


async def test_t4_no_secret_in_the_production_json_logs(servers: Servers, settings: Settings) -> None:
    async with servers.client(servers.proxied.url, https=True) as proxy:
        flow = await representative_flow(
            proxy, settings, **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.7"}
        )
    await asyncio.sleep(0.3)  # the request line is written after its response is sent
    text = servers.proxied.log_path.read_text()
    assert flow.hits(text) == []
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("user_id") == flow.user_id]
    assert any(line["event"] == "request" and line.get("api_key") == flow.api_key for line in mine)
    [settled] = [line for line in mine if line["event"] == "generation_settled"]
    assert settled["model"] == "gemini-flash"
    assert settled["output_tokens"] > 0
    assert settled["cost"] != "0"
    assert settled["request_id"]


def test_t2_every_https_response_has_hsts_and_no_plain_one_does(servers: Servers) -> None:
    """Runs last: tallies every response the module's clients received."""
    assert len(servers.https_responses) >= 15
    assert len(servers.plain_responses) >= 10
    for response in servers.https_responses:
        directives = response.headers["strict-transport-security"].split(";")
        assert int(directives[0].removeprefix("max-age=")) >= HSTS_MAX_AGE
        assert "includeSubDomains" in (d.strip() for d in directives)
    assert [r for r in servers.plain_responses if "strict-transport-security" in r.headers] == []
    for response in servers.https_responses + servers.plain_responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "Traceback" not in response.text
