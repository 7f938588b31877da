"""`GET /metrics`: generations, tokens, credits, time to first token, upstream errors and open streams move by
exactly what the ledger and the generation records say; HTTP series are labelled by route template.

The registry is per process and shared by every app the suite builds, so each test compares two scrapes."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from httpx_sse import aconnect_sse
from litestar import Litestar
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.prometheus_metrics import PrometheusGenerationMetrics
from application.generations.reaper import ReapExpiredGenerations
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import bearer, upstream_model_client
from tests.support.fake_upstream import FakeUpstream, fail_after, fail_before_first, serve_fake_upstream, steady
from tests.support.fakes import Fakes
from tests.support.generation_runs import LEASE, started
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

HELLO = [{"role": "user", "content": "hello there"}]
GENERATIONS = "/api/v1/generations"
MODEL = "metered"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        yield fake


@pytest.fixture
def gateway(settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine) -> Litestar:
    return create_app(
        replace_settings(
            settings,
            providers={"openai_base_url": f"{upstream.base_url}/v1", "openai_api_key": "sk-upstream-secret"},
        )
    )


@pytest.fixture
async def http(gateway: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_on_loopback(gateway) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def token(http: httpx.AsyncClient, settings: Settings) -> str:
    return await upstream_model_client(http, settings, MODEL, "metrics")


async def _scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def _stream(http: httpx.AsyncClient, token: str) -> list[str]:
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        return [event.event async for event in source.aiter_sse()]


async def test_generation_metrics_move_by_what_was_billed(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, clean_db: AsyncEngine
) -> None:
    before = await _scrape(http)
    upstream.use(steady(4))  # the provider reports 11 prompt and 4 completion tokens
    completed = await http.post(GENERATIONS, json={"model": MODEL, "messages": HELLO}, headers=bearer(token))
    assert completed.status_code == 200
    upstream.use(steady(3))
    assert await _stream(http, token) == ["start", "delta", "delta", "delta", "done"]
    upstream.use(fail_before_first(500))  # refunded: nothing billed, no first token
    refused = await http.post(GENERATIONS, json={"model": MODEL, "messages": HELLO}, headers=bearer(token))
    assert refused.status_code == 502
    upstream.use(fail_after(2))  # two tokens, then the connection breaks: billed by the gateway's counter
    assert (await _stream(http, token))[-1] == "error"
    by_id = await http.get(f"{GENERATIONS}/{completed.json()['id']}", headers=bearer(token))
    assert by_id.status_code == 200
    await http.get("/health/live")  # the requests above have surely been recorded by now
    after = await _scrape(http)

    async with clean_db.connect() as connection:
        billed = (
            await connection.execute(
                text(
                    "SELECT sum(input_tokens) AS prompt, sum(output_tokens) AS completion, sum(cost) AS cost, "
                    "count(*) AS n FROM generations WHERE model = :model AND cost > 0"
                ),
                {"model": MODEL},
            )
        ).one()
        ledger_cost = -int(
            await connection.scalar(text("SELECT sum(amount) FROM ledger_entries WHERE generation_id IS NOT NULL"))
        )
    assert billed.n == 3
    assert billed.prompt > 2 * 11  # 11 reported twice, then the counted prompt of the broken stream
    assert billed.completion == 4 + 3 + 2
    assert ledger_cost == billed.cost

    assert _moved(before, after, "creditgate_generations_total", model=MODEL, status="completed") == 2
    assert _moved(before, after, "creditgate_generations_total", model=MODEL, status="failed") == 2
    assert _moved(before, after, "creditgate_generations_total", model=MODEL, status="cancelled") == 0
    assert _moved(before, after, "creditgate_tokens_total", model=MODEL, type="prompt") == billed.prompt
    assert _moved(before, after, "creditgate_tokens_total", model=MODEL, type="completion") == billed.completion
    assert _moved(before, after, "creditgate_charged_microcredits_total", model=MODEL) == ledger_cost
    ttft = "creditgate_upstream_time_to_first_token_seconds_count"
    assert _moved(before, after, ttft, provider="openai", model=MODEL) == 3
    assert _moved(before, after, "creditgate_upstream_errors_total", provider="openai", code="upstream_error") == 2
    assert after[("creditgate_open_streams", frozenset())] == before[("creditgate_open_streams", frozenset())]

    route = {"method": "POST", "path": GENERATIONS, "app_name": "creditgate"}
    assert _moved(before, after, "creditgate_requests_total", **route, status_code="200") == 3
    assert _moved(before, after, "creditgate_requests_total", **route, status_code="502") == 1
    assert _moved(before, after, "creditgate_request_duration_seconds_count", **route, status_code="502") == 1
    by_template = {"method": "GET", "path": f"{GENERATIONS}/{{generation_id}}", "app_name": "creditgate"}
    assert _moved(before, after, "creditgate_requests_total", **by_template, status_code="200") == 1
    assert not any(completed.json()["id"] in dict(labels).get("path", "") for _, labels in after)


async def test_an_open_stream_is_counted_until_it_ends(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str
) -> None:
    before = (await _scrape(http))[("creditgate_open_streams", frozenset())]
    upstream.use(steady(5, delay_s=0.05))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        events = source.aiter_sse()
        assert (await anext(events)).event == "start"
        assert (await anext(events)).event == "delta"
        assert (await _scrape(http))[("creditgate_open_streams", frozenset())] == before + 1
        rest = [event async for event in events]
    assert json.loads(rest[-1].data)["usage"]["output_tokens"] == 5
    assert (await _scrape(http))[("creditgate_open_streams", frozenset())] == before


async def test_the_reaper_reports_what_it_settled(gateway: Litestar) -> None:
    metrics = PrometheusGenerationMetrics()
    async with serve_on_loopback(gateway) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        before = await _scrape(client)
        for _ in range(2):
            fakes = Fakes()
            for _ in range(2):
                await started(fakes)
            fakes.clock.advance(LEASE + timedelta(seconds=1))
            assert await ReapExpiredGenerations(fakes.billing, metrics, fakes.clock, fakes.ids)() == 2
        after = await _scrape(client)
    assert _moved(before, after, "creditgate_generations_reaped_total") == 4


def test_label_children_are_bound_once_per_model() -> None:
    metrics = PrometheusGenerationMetrics()
    first = metrics.started("simulator", "bound-once")
    first.closed()
    assert len(metrics._series) == 1
    second = metrics.started("simulator", "bound-once")
    second.closed()
    assert len(metrics._series) == 1


async def test_a_client_that_leaves_mid_stream_is_counted_cancelled_and_its_stream_closed(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, clean_db: AsyncEngine
) -> None:
    before = await _scrape(http)
    upstream.use(steady(50, delay_s=0.05))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        events = source.aiter_sse()
        assert (await anext(events)).event == "start"
        assert (await anext(events)).event == "delta"
    for _ in range(100):  # the gateway notices the disconnect, closes the upstream and settles
        after = await _scrape(http)
        if _moved(before, after, "creditgate_generations_total", model=MODEL, status="cancelled") == 1:
            break
        await asyncio.sleep(0.05)
    async with clean_db.connect() as connection:
        row = (await connection.execute(text("SELECT status, output_tokens, cost FROM generations"))).one()
    assert row.status == "cancelled"
    assert _moved(before, after, "creditgate_generations_total", model=MODEL, status="cancelled") == 1
    assert _moved(before, after, "creditgate_tokens_total", model=MODEL, type="completion") == row.output_tokens
    assert _moved(before, after, "creditgate_charged_microcredits_total", model=MODEL) == row.cost
    assert after[("creditgate_open_streams", frozenset())] == before[("creditgate_open_streams", frozenset())]
