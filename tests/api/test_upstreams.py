"""The gateway in front of a real (fake) OpenAI-compatible upstream on loopback: failures, garbage, stalls and
disconnects are billed exactly and never answer 500."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.credits import Credits
from domain.pricing import Pricing, Usage
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, upstream_model_client
from tests.support.audit import ledger_violations
from tests.support.fake_upstream import (
    FakeUpstream,
    Script,
    fail_after,
    fail_before_first,
    garbage,
    no_usage,
    serve_fake_upstream,
    stall,
    steady,
    with_usage,
    with_usage_text,
)
from tests.support.keys import signed_login
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

PRICE = Pricing(1, Credits(1000), Credits(2000))
HELLO = [{"role": "user", "content": "hello there"}]
GENERATIONS = "/api/v1/generations"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as fake:
        yield fake


@pytest.fixture
def gateway(settings: Settings, upstream: FakeUpstream, clean_db: AsyncEngine) -> Litestar:
    return create_app(
        replace_settings(
            settings,
            providers={
                "openai_base_url": f"{upstream.base_url}/v1",
                "openai_api_key": "sk-upstream-secret",
                "read_timeout_seconds": 1.0,
            },
        )
    )


@pytest.fixture
async def http(gateway: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_on_loopback(gateway) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def token(http: httpx.AsyncClient, settings: Settings) -> str:
    return await upstream_model_client(http, settings, "up", "up")


async def _balance(http: httpx.AsyncClient, token: str) -> str:
    return str((await http.get("/api/v1/me/balance", headers=bearer(token))).json()["balance"])


async def _stream(http: httpx.AsyncClient, token: str, **extra: Any) -> list[tuple[str, dict[str, Any]]]:
    body = {"model": "up", "messages": HELLO, "stream": True, **extra}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        return [(event.event, json.loads(event.data)) async for event in source.aiter_sse()]


async def test_the_providers_usage_is_what_is_billed(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str
) -> None:
    upstream.use(with_usage(4, 40, 4))
    generation = (await http.post(GENERATIONS, json={"model": "up", "messages": HELLO}, headers=bearer(token))).json()
    assert generation["usage"] == {
        "input_tokens": 40,
        "output_tokens": 4,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert generation["cost"] == str(PRICE.cost(Usage(40, 4)))
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-upstream-secret"


async def test_without_provider_usage_the_counter_bills(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str
) -> None:
    upstream.use(no_usage(5))
    generation = (await http.post(GENERATIONS, json={"model": "up", "messages": HELLO}, headers=bearer(token))).json()
    assert generation["status"] == "completed"
    assert generation["usage"]["output_tokens"] >= 5
    assert generation["cost"] == str(PRICE.cost(Usage(**generation["usage"])))


CACHED_PRICE = Pricing(1, Credits(1000), Credits(2000), cached_input_credits=Credits(100))
LONG_PROMPT = [{"role": "user", "content": " ".join(["word"] * 300)}]
CACHED_USAGE = Usage(310, 4, cached_input_tokens=300, reasoning_tokens=1)
CACHED_USAGE_VIEW = {
    "input_tokens": 310,
    "output_tokens": 4,
    "cached_input_tokens": 300,
    "cache_write_tokens": 0,
    "reasoning_tokens": 1,
}


def cached_answer(text: str, usage: Usage) -> Script:
    """An OpenAI stream whose usage reports prompt tokens read from the provider's cache, and reasoning tokens."""
    reported = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    return garbage(
        [
            "data: " + json.dumps({"choices": [{"delta": {"content": text}, "finish_reason": "stop"}]}),
            "data: " + json.dumps({"choices": [], "usage": reported}),
            "data: [DONE]",
        ]
    )


@pytest.fixture
async def cached_pricing(http: httpx.AsyncClient, settings: Settings, token: str) -> str:
    """The model `up` prices cached prompt tokens at a tenth of the others; an admin token."""
    admin = await admin_token(http, settings, username="cache-admin")
    pricing = {"unit_tokens": 1, "input_credits": "0.001", "output_credits": "0.002", "cached_input_credits": "0.0001"}
    patched = await http.patch("/api/v1/admin/models/up", json={"pricing": pricing}, headers=bearer(admin))
    assert patched.json()["pricing"] == pricing
    return admin


async def test_a_cached_prompt_is_billed_all_its_tokens_the_cached_ones_at_the_cached_price(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, cached_pricing: str, clean_db: AsyncEngine
) -> None:
    """Pre-charged for ~300 prompt tokens at input_credits; the provider served 300 of 310 from its cache, so
    the settlement gives most of the pre-charge back, and the generation costs exactly its token classes."""
    upstream.use(cached_answer("Paper clips.", CACHED_USAGE))
    cost = CACHED_PRICE.cost(CACHED_USAGE)
    assert str(cost) == "0.048"
    body = {"model": "up", "messages": LONG_PROMPT}
    generation = (await http.post(GENERATIONS, json=body, headers=bearer(token))).json()
    assert (generation["usage"], generation["cost"]) == (CACHED_USAGE_VIEW, str(cost))
    assert generation["balance"] == str(Credits.whole(100) - cost)
    stored = (await http.get(f"{GENERATIONS}/{generation['id']}", headers=bearer(token))).json()
    assert stored["usage"] == CACHED_USAGE_VIEW
    transactions = (await http.get("/api/v1/me/transactions", headers=bearer(token))).json()["items"]
    settle, precharge = (Credits.parse(t["amount"]) for t in transactions[:2])
    assert precharge < Credits.zero() < settle
    assert settle + precharge == -cost
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []

    events = await _stream(http, token, messages=LONG_PROMPT)
    assert events[-1][0] == "done"
    assert (events[-1][1]["usage"], events[-1][1]["cost"]) == (CACHED_USAGE_VIEW, str(cost))

    report = await http.get("/api/v1/admin/usage?group_by=model", headers=bearer(cached_pricing))
    [row] = [row for row in report.json()["items"] if row["key"] == "up"]
    assert row == {"key": "up", "requests": 2, "credits": str(cost + cost)} | {
        name: 2 * count for name, count in CACHED_USAGE_VIEW.items()
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_the_openai_surface_reports_cached_and_reasoning_tokens_and_the_cost(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, cached_pricing: str, stream: bool
) -> None:
    upstream.use(cached_answer("Paper clips.", CACHED_USAGE))
    client = AsyncOpenAI(base_url=str(http.base_url.join("/v1")), api_key=token, max_retries=0)
    if stream:
        chunks = [
            chunk
            async for chunk in await client.chat.completions.create(
                model="up", messages=LONG_PROMPT, stream=True, stream_options={"include_usage": True}
            )
        ]
        usage = chunks[-1].usage
    else:
        usage = (await client.chat.completions.create(model="up", messages=LONG_PROMPT)).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (310, 4, 314)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 300
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 1
    assert (usage.model_extra or {})["cost"] == str(CACHED_PRICE.cost(CACHED_USAGE))


@pytest.mark.parametrize(
    ("status", "code", "http_status"), [(500, "upstream_error", 502), (503, "provider_unavailable", 503)]
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_failure_before_the_first_token_refunds_and_is_a_real_status(
    http: httpx.AsyncClient,
    upstream: FakeUpstream,
    token: str,
    clean_db: AsyncEngine,
    status: int,
    code: str,
    http_status: int,
    stream: bool,
) -> None:
    upstream.use(fail_before_first(status))
    before = await _balance(http, token)
    response = await http.post(
        GENERATIONS, json={"model": "up", "messages": HELLO, "stream": stream}, headers=bearer(token)
    )
    assert response.status_code == http_status
    assert response.json()["code"] == code
    assert await _balance(http, token) == before
    transactions = (await http.get("/api/v1/me/transactions", headers=bearer(token))).json()["items"]
    assert transactions[0]["kind"] == "refund"
    assert await generation_violations(clean_db) == []


async def test_a_stream_broken_midway_ends_with_an_error_event_and_pays_what_came(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, clean_db: AsyncEngine
) -> None:
    upstream.use(fail_after(3))
    events = await _stream(http, token)
    names = [name for name, _ in events]
    assert names == ["start", "delta", "delta", "delta", "error"]
    error = events[-1][1]
    assert error["code"] == "upstream_error"
    assert error["usage"]["output_tokens"] == 3
    assert error["cost"] == str(PRICE.cost(Usage(**error["usage"])))
    generation = (await http.get(f"{GENERATIONS}/{error['id']}", headers=bearer(token))).json()
    assert generation["status"] == "failed"
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_a_stalled_upstream_ends_within_the_read_timeout(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str
) -> None:
    upstream.use(stall(2))
    started = time.monotonic()
    events = await _stream(http, token)
    assert time.monotonic() - started < 1.0 + 1.5
    assert events[-1][0] == "error"
    assert events[-1][1]["usage"]["output_tokens"] == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.builds(lambda s: f"data: {s}", st.text(max_size=40)),
            st.just('data: {"choices": [{"delta": {"content": "x"}}]}'),
            st.just('data: {"usage": {"prompt_tokens": -5, "completion_tokens": 99999999999}}'),
            st.just("data: [DONE]"),
        ),
        max_size=8,
    )
)
async def test_garbage_from_the_upstream_never_causes_a_500_or_a_wrong_charge(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, clean_db: AsyncEngine, lines: list[str]
) -> None:
    upstream.use(garbage(lines))
    for stream in (False, True):
        response = await http.post(
            GENERATIONS, json={"model": "up", "messages": HELLO, "stream": stream}, headers=bearer(token)
        )
        assert response.status_code in {200, 502, 503}, response.text
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_a_client_disconnect_closes_the_upstream_and_bills_what_was_read(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, clean_db: AsyncEngine
) -> None:
    upstream.use(steady(200, delay_s=0.02))
    body = {"model": "up", "messages": HELLO, "stream": True}
    async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        generation_id = source.response.headers["x-generation-id"]
        deltas = 0
        async for event in source.aiter_sse():
            deltas += event.event == "delta"
            if deltas == 5:
                break
    closed_at = time.monotonic()
    for _ in range(50):
        if upstream.requests[0].disconnected_at is not None:
            break
        await asyncio.sleep(0.02)
    seen = upstream.requests[0].disconnected_at
    assert seen is not None
    assert seen - closed_at <= 0.5
    await asyncio.sleep(0.2)
    generation = (await http.get(f"{GENERATIONS}/{generation_id}", headers=bearer(token))).json()
    assert generation["status"] == "cancelled"
    assert 5 <= generation["usage"]["output_tokens"] <= upstream.requests[0].chunks_sent
    balance = await _balance(http, token)
    await asyncio.sleep(1.0)
    assert await _balance(http, token) == balance
    assert await generation_violations(clean_db) == []


@pytest.fixture
async def comparer(http: httpx.AsyncClient, settings: Settings, token: str) -> tuple[str, str]:
    """A key-scoped token on a TypeID whose model is the fake upstream, and a reference to compare against."""
    admin = await admin_token(http, settings, username="cmp-admin")
    typeid = {
        "typeid": "graded",
        "scale": 10,
        "system": "Grade.",
        "user": "{reference} vs {text}",
        "model": "up",
        "llm": "openai",
    }
    assert (await http.post("/api/v1/types", json=typeid, headers=bearer(admin))).status_code == 201
    user_id = (await http.get("/api/v1/me", headers=bearer(token))).json()["id"]
    key = (await http.post("/api/v1/keys", json={"user_id": user_id, "typeid": "graded"}, headers=bearer(admin))).json()
    login = await http.post("/api/v1/auth", json=signed_login(key["api_key"], "up-user", key["secret_key"]))
    key_token = login.json()["access_token"]
    reference = await http.post("/api/v1/reference", json={"text": "cmVmZXJlbmNl"}, headers=bearer(key_token))
    return key_token, reference.json()["reference_id"]


@pytest.mark.parametrize(
    ("answers", "score"),
    [
        (['{"score": 7, "explanation": "close"}'], 7),
        (['```json\n{"score": 3.5, "explanation": "fenced"}\n```'], 3.5),
        (['Sure! {"score": 9, "explanation": "amid prose"} Hope it helps.'], 9),
        (['{"score": 11, "explanation": "out of range"}', '{"score": 4, "explanation": "retried"}'], 4),
        (["not json at all", '{"score": 0, "explanation": "retried"}'], 0),
    ],
)
async def test_the_score_is_parsed_robustly_and_every_attempt_billed(
    http: httpx.AsyncClient,
    upstream: FakeUpstream,
    comparer: tuple[str, str],
    clean_db: AsyncEngine,
    answers: list[str],
    score: float,
) -> None:
    key_token, reference_id = comparer
    upstream.use(steady(1))
    upstream.answers = [with_usage_text(answer) for answer in answers]
    response = await http.post(f"/api/v1/compare/{reference_id}", json={"text": "dGV4dA=="}, headers=bearer(key_token))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["score"] == score
    assert len(upstream.requests) == len(answers)
    assert result["cost"] == str(PRICE.cost(Usage(40 * len(answers), 4 * len(answers))))
    assert await generation_violations(clean_db) == []


async def test_a_comparison_reports_and_bills_the_cached_prompt_tokens_of_its_attempts(
    http: httpx.AsyncClient,
    upstream: FakeUpstream,
    comparer: tuple[str, str],
    cached_pricing: str,
    clean_db: AsyncEngine,
) -> None:
    key_token, reference_id = comparer
    upstream.answers = [cached_answer("no score", CACHED_USAGE), cached_answer('{"score": 7}', CACHED_USAGE)]
    response = await http.post(f"/api/v1/compare/{reference_id}", json={"text": "dGV4dA=="}, headers=bearer(key_token))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["usage"] == {name: 2 * count for name, count in CACHED_USAGE_VIEW.items()}
    assert result["cost"] == str(CACHED_PRICE.cost(CACHED_USAGE) + CACHED_PRICE.cost(CACHED_USAGE))
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_an_unusable_score_after_the_retry_is_502_and_still_billed(
    http: httpx.AsyncClient, upstream: FakeUpstream, comparer: tuple[str, str], clean_db: AsyncEngine, token: str
) -> None:
    key_token, reference_id = comparer
    upstream.answers = [with_usage_text('{"score": "high"}'), with_usage_text("{broken")]
    before = Credits.parse(await _balance(http, token))
    response = await http.post(f"/api/v1/compare/{reference_id}", json={"text": "dGV4dA=="}, headers=bearer(key_token))
    assert response.status_code == 502
    assert response.json()["code"] == "unparseable_score"
    assert Credits.parse(await _balance(http, token)) == before - PRICE.cost(Usage(80, 8))
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_a_nul_in_the_upstream_text_reaches_the_client_and_is_billed(
    http: httpx.AsyncClient, upstream: FakeUpstream, token: str, clean_db: AsyncEngine
) -> None:
    """PostgreSQL text holds no U+0000: the stored output replaces it, so settlement never fails on it."""
    upstream.use(with_usage_text("a\x00b"))
    generation = (await http.post(GENERATIONS, json={"model": "up", "messages": HELLO}, headers=bearer(token))).json()
    assert (generation["status"], generation["output"]["content"]) == ("completed", "a\x00b")
    stored = (await http.get(f"{GENERATIONS}/{generation['id']}", headers=bearer(token))).json()
    assert stored["output"]["content"] == "a\ufffdb"
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []
