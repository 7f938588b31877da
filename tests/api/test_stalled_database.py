"""A stalled PostgreSQL (it accepts connections and answers nothing) never hangs a request: every statement is
bounded by DB_TIMEOUT_SECONDS, then 503 `service_unavailable`; readiness answers within 2 s; a running stream
keeps relaying and settles once the database is back. The stall is a paused proxy in front of the shared server."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import bearer, funded_client_token
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings
from tests.support.stall import PausableProxy, pausable_database

pytestmark = pytest.mark.timeout(90)

DB_TIMEOUT_SECONDS = 1.0
ANSWERED_WITHIN = DB_TIMEOUT_SECONDS + 1.0
READY_WITHIN = 2.0
GENERATIONS = "/api/v1/generations"
HELLO = [{"role": "user", "content": "Say hello to the world"}]


Stalling = tuple[httpx.AsyncClient, Settings, PausableProxy]


@asynccontextmanager
async def _served_behind_a_proxy(settings: Settings, db_timeout_seconds: float) -> AsyncIterator[Stalling]:
    async with pausable_database(settings.database.require_url()) as (url, proxy):
        proxied = replace_settings(
            settings,
            database={"url": url, "timeout_seconds": db_timeout_seconds},
            providers={"simulator_token_delay_ms": 40},
        )
        async with (
            serve_on_loopback(create_app(proxied)) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        ):
            yield http, proxied, proxy


@pytest.fixture
async def stalling(settings: Settings, clean_db: AsyncEngine) -> AsyncIterator[Stalling]:
    async with _served_behind_a_proxy(settings, DB_TIMEOUT_SECONDS) as served:
        yield served


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["retry-after"]


async def test_a_stalled_database_is_a_prompt_503_and_everything_works_once_it_is_back(
    stalling: Stalling,
) -> None:
    http, settings, proxy = stalling
    token = await funded_client_token(http, settings, "stalled")
    generation = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 3}

    proxy.pause()
    me, took = await _timed(http.get("/api/v1/me", headers=bearer(token)))
    _unavailable(me)
    assert took < ANSWERED_WITHIN
    generated, took = await _timed(http.post(GENERATIONS, json=generation, headers=bearer(token)))
    _unavailable(generated)
    assert took < ANSWERED_WITHIN
    ready, took = await _timed(http.get("/health/ready"))
    assert ready.status_code == 503
    assert took < READY_WITHIN
    concurrent = await asyncio.gather(*(http.get("/api/v1/me", headers=bearer(token)) for _ in range(20)))
    for response in concurrent:
        _unavailable(response)

    proxy.resume()
    for _ in range(3):
        assert (await http.get("/api/v1/me", headers=bearer(token))).status_code == 200
    generated = await http.post(GENERATIONS, json=generation, headers=bearer(token))
    assert generated.status_code == 200, generated.text
    assert (await http.get("/health/ready")).status_code == 200


async def test_a_running_stream_keeps_relaying_through_a_stall_and_settles_once_the_database_is_back(
    stalling: Stalling, clean_db: AsyncEngine
) -> None:
    http, settings, proxy = stalling
    token = await funded_client_token(http, settings, "stalled")
    body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 150, "stream": True}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        events = source.aiter_sse()
        assert (await anext(events)).event == "start"
        assert (await anext(events)).event == "delta"
        proxy.pause()
        stalled_at = last = time.monotonic()
        gaps = []
        async for event in events:
            assert event.event == "delta"
            gaps.append(time.monotonic() - last)
            last = time.monotonic()
            if last - stalled_at > 3 * DB_TIMEOUT_SECONDS:  # checkpoints are due every second
                break
        assert max(gaps) < DB_TIMEOUT_SECONDS / 2  # 40 ms a token: no checkpoint holds the relay up
        proxy.resume()
        rest = [event async for event in events]
    assert rest[-1].event == "done", rest[-1].data
    assert await generation_violations(clean_db) == []
    listed = (await http.get(GENERATIONS, headers=bearer(token))).json()
    assert [item["status"] for item in listed["items"]] == ["completed"]


async def test_readiness_answers_within_2_s_whatever_the_statement_bound(
    settings: Settings, clean_db: AsyncEngine
) -> None:
    async with _served_behind_a_proxy(settings, 5.0) as (http, _, proxy):
        assert (await http.get("/health/ready")).status_code == 200
        proxy.pause()
        for _ in range(2):  # a pooled connection, then a new one that never gets past authentication
            ready, took = await _timed(http.get("/health/ready"))
            assert ready.status_code == 503
            assert ready.json() == {"ready": False, "database": False}
            assert took < READY_WITHIN
