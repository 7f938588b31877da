"""Clients of the deployment see what the README promises: HTTPS from Caddy's local CA in front of three replicas,
the `openai` SDK working through it, HSTS, plain HTTP redirected, and the client's own address (not Caddy's, nor
one it claims) reaching the throttles."""

import time
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.deploy.conftest import LOGIN_FAILURE_LIMIT, Accounts, Deployment
from tests.support.api import PASSWORD, register
from tests.support.cluster import free_port
from tests.support.topology import caddy, replica_metric

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]  # the first test also waits for the package's deployment

HELLO = [{"role": "user", "content": "Say hello"}]
HSTS = "max-age=31536000; includeSubDomains"


def _sdk(deployment: Deployment, token: str) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(verify=deployment.caddy.trust(), timeout=15)
    return openai.AsyncOpenAI(base_url=f"{deployment.caddy.url}/v1", api_key=token, max_retries=0, http_client=http)


async def test_the_openai_sdk_completes_through_caddy(deployment: Deployment, accounts: Accounts) -> None:
    async with _sdk(deployment, accounts.users[0]) as sdk:
        completion = await sdk.chat.completions.create(model="dr14", messages=HELLO, max_tokens=7)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert (completion.usage.model_extra or {})["cost"]


async def test_the_openai_sdk_streams_through_caddy(deployment: Deployment, accounts: Accounts) -> None:
    async with _sdk(deployment, accounts.users[1]) as sdk:
        stream = await sdk.chat.completions.create(
            model="dr14",
            messages=HELLO,  # type: ignore[arg-type]
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text_chunks = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(text_chunks) > 1, "the events come through one by one"
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 12
    assert (usage.model_extra or {})["cost"]


async def test_every_replica_answers_in_turn(deployment: Deployment) -> None:
    """Round robin: a few requests reach each of the three replicas (each counts its own requests in /metrics,
    which Caddy does not serve)."""
    async with deployment.client() as http:
        assert (await http.get("/metrics")).status_code == 404
        before = [
            await replica_metric(url, "creditgate_requests_total", 'path="/health/live"')
            for url in deployment.cluster.urls
        ]
        for _ in range(9):
            assert (await http.get("/health/live")).status_code == 200
        after = [
            await replica_metric(url, "creditgate_requests_total", 'path="/health/live"')
            for url in deployment.cluster.urls
        ]
    assert all(later > earlier for earlier, later in zip(before, after, strict=True)), (before, after)


async def test_https_answers_carry_hsts(deployment: Deployment) -> None:
    async with deployment.client() as http:
        response = await http.get("/api/v1/models")
    assert response.status_code == 401
    assert response.headers["strict-transport-security"] == HSTS
    assert response.http_version in {"HTTP/1.1", "HTTP/2"}


async def test_plain_http_is_redirected_to_https(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"http://localhost:{deployment.caddy.http_port}/api/v1/me?x=1")
    assert response.status_code == 308
    assert response.headers["location"] == f"{deployment.caddy.url}/api/v1/me?x=1"
    assert "strict-transport-security" not in response.headers
    async with deployment.client() as https:
        followed = await https.get(response.headers["location"])
    assert followed.status_code == 401


async def test_the_throttles_see_the_clients_address_not_one_it_claims(
    deployment: Deployment, accounts: Accounts, engine: AsyncEngine
) -> None:
    """Failed logins from 127.0.0.2, each claiming another X-Forwarded-For: Caddy replaces the header with the
    real peer, so they all count against 127.0.0.2, which is refused past its limit while 127.0.0.3 logs in."""
    address_limit = 3 * LOGIN_FAILURE_LIMIT
    async with deployment.client(local_address="127.0.0.2") as attacker:
        statuses = []
        for attempt in range(address_limit + 1):
            body = {"username": f"nobody{attempt}", "password": "wrong password"}
            spoofed = {"X-Forwarded-For": f"203.0.113.{attempt}"}
            statuses.append((await attacker.post("/api/v1/auth/login", json=body, headers=spoofed)).status_code)
    async with deployment.client(local_address="127.0.0.3") as neighbour:
        await register(neighbour, "neighbour")
        body = {"username": "neighbour", "password": PASSWORD}
        neighbour_login = await neighbour.post("/api/v1/auth/login", json=body)
    assert statuses == [401] * address_limit + [429]
    assert neighbour_login.status_code == 200
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT subject, sum(hits) AS hits FROM throttle_counters WHERE subject LIKE 'login:addr:%' GROUP BY 1"
            )
        )
        failures = {row.subject.removeprefix("login:addr:"): row.hits for row in rows}
    assert failures["127.0.0.2"] >= address_limit
    assert failures.get("127.0.0.1", 0) == 0, "Caddy's own address is not the client's"
    assert not [address for address in failures if address.startswith("203.0.113.")], failures


async def test_with_no_replica_reachable_caddy_answers_503_with_retry_after(tmp_path: Path) -> None:
    """Every replica out (the database down everywhere takes them all out of rotation): Caddy tries for its
    lb_try_duration, then answers as a replica would."""
    nowhere = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    with caddy(nowhere, tmp_path, serving=False) as proxy:
        async with httpx.AsyncClient(verify=proxy.trust(), timeout=15) as http:
            started = time.monotonic()
            response = await http.get(f"{proxy.url}/api/v1/me")
            waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "service_unavailable"
    assert 4 < waited < 10, "it kept trying for lb_try_duration (5 s)"
