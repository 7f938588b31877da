import asyncio
import json
from typing import Any

import httpx
import pytest
from dishka import Provider, Scope
from httpx_sse import aconnect_sse
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.generation_billing import PgGenerationBilling
from application.ports.billing import GenerationBilling, Settlement
from domain.credits import Credits
from domain.errors import StorageUnavailable
from domain.pricing import Pricing, Usage
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token, fund, funded_client_token, user_id_of
from tests.support.audit import ledger_violations
from tests.support.money import generation_violations
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

DR14 = Pricing(100, Credits.whole(20), Credits.whole(20))
GEMINI_FLASH = Pricing(100, Credits.whole(1), Credits.whole(1))
GENERATIONS = "/api/v1/generations"
HELLO = [{"role": "user", "content": "Say hello to the world"}]


async def test_a_generation_is_charged_its_exact_price(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    token = await funded_client_token(client, settings, "gen1")
    response = await client.post(
        GENERATIONS, json={"model": "dr14", "messages": HELLO, "max_tokens": 10}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    generation = response.json()
    usage = generation["usage"]
    assert generation["status"] == "completed"
    assert usage["output_tokens"] == 10
    assert usage["input_tokens"] > 0
    assert generation["output"]["role"] == "assistant"
    assert generation["output"]["content"]
    expected = DR14.cost(Usage(usage["input_tokens"], usage["output_tokens"]))
    assert generation["cost"] == str(expected)
    assert generation["balance"] == str(Credits.whole(100) - expected)
    stored = (await client.get(f"{GENERATIONS}/{generation['id']}", headers=bearer(token))).json()
    assert stored["status"] == "completed"
    assert stored["cost"] == generation["cost"]
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


async def test_a_stream_sends_start_deltas_and_done_each_with_an_id(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    token = await funded_client_token(client, settings, "gen2")
    body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 5, "stream": True}
    async with aconnect_sse(client, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = [event async for event in source.aiter_sse()]
    names = [event.event for event in events]
    assert names[0] == "start"
    assert names[1:-1] == ["delta"] * 5
    assert names[-1] == "done"
    assert all(event.id for event in events)
    done = json.loads(events[-1].data)
    assert done["usage"]["output_tokens"] == 5
    assert {"id", "usage", "cost", "balance"} <= done.keys()
    assert {key: done["usage"][key] for key in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens")} == {
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert await generation_violations(clean_db) == []


@pytest.mark.parametrize("path", [GENERATIONS, "/v1/chat/completions"])
async def test_stream_chunks_skip_the_layers_that_act_on_the_response_start_only(
    settings: Settings, clean_db: AsyncEngine, path: str
) -> None:
    """Only the start and the end of a stream pass through the middleware stack; every event still arrives."""
    app = create_app(settings)
    layered: list[str] = []
    transport = app.asgi_handler._app  # type: ignore[attr-defined]  # RequestContext(TransportSecurity(...))

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def counted(message: Any) -> None:
            layered.append(message["type"])
            await send(message)

        await transport(scope, receive, counted)

    app.asgi_handler._app = counting  # type: ignore[attr-defined]
    async with AsyncTestClient(app=app) as client:
        token = await funded_client_token(client, settings, f"wire{len(path)}")
        body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 20, "stream": True}
        layered.clear()
        async with aconnect_sse(client, "POST", path, json=body, headers=bearer(token)) as source:
            events = [event async for event in source.aiter_sse()]
    assert len(events) >= 22
    assert layered == ["http.response.start", "http.response.body"]


async def test_no_balance_is_402_before_any_stream_opens(client: AsyncTestClient[Litestar]) -> None:
    token = await client_token(client, "gen3")
    for stream in (False, True):
        response = await client.post(
            GENERATIONS, json={"model": "dr14", "messages": HELLO, "stream": stream}, headers=bearer(token)
        )
        assert response.status_code == 402
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "insufficient_balance"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "nope", "messages": HELLO}, 404, "model_not_found"),
        ({"model": "dr14", "messages": []}, 422, "validation_error"),
        ({"model": "dr14", "messages": [{"role": "robot", "content": "x"}]}, 422, "validation_error"),
        ({"model": "dr14", "messages": HELLO, "max_tokens": 999_999}, 422, "validation_error"),
        ({"model": "dr14", "messages": HELLO, "temperature": 3}, 422, "validation_error"),
        ({"model": "dr14", "messages": HELLO, "user_id": "x"}, 422, "validation_error"),
    ],
)
async def test_bad_generation_requests_are_clear_problems(
    client: AsyncTestClient[Litestar], settings: Settings, body: dict[str, Any], status: int, code: str
) -> None:
    token = await funded_client_token(client, settings, "gen4")
    response = await client.post(GENERATIONS, json=body, headers=bearer(token))
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


async def test_another_users_generation_is_404_and_admins_see_it(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    owner = await funded_client_token(client, settings, "gen5")
    other = await client_token(client, "gen6")
    generation = (
        await client.post(
            GENERATIONS, json={"model": "dr14", "messages": HELLO, "max_tokens": 2}, headers=bearer(owner)
        )
    ).json()
    path = f"{GENERATIONS}/{generation['id']}"
    assert (await client.get(path, headers=bearer(other))).status_code == 404
    admin = await admin_token(client, settings, username="gen-admin")
    assert (await client.get(path, headers=bearer(admin))).status_code == 200
    listed = (await client.get(GENERATIONS, headers=bearer(owner))).json()
    assert [g["id"] for g in listed["items"]] == [generation["id"]]
    assert (await client.get(GENERATIONS, headers=bearer(other))).json()["items"] == []


async def test_the_generation_list_pages_newest_first_with_a_cursor(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    token = await funded_client_token(client, settings, "gen-pages")
    body = {"model": "dr14", "messages": HELLO, "max_tokens": 2}
    created = [(await client.post(GENERATIONS, json=body, headers=bearer(token))).json()["id"] for _ in range(3)]
    first = (await client.get(GENERATIONS, params={"limit": 2}, headers=bearer(token))).json()
    second = (
        await client.get(GENERATIONS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(token))
    ).json()
    assert [g["id"] for g in first["items"] + second["items"]] == created[::-1]
    assert second["next_cursor"] is None
    forged = await client.get(GENERATIONS, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=bearer(token))
    assert (forged.status_code, forged.json()["code"]) == (422, "validation_error")


async def test_a_burst_spends_exactly_what_the_balance_covers(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    admin = await admin_token(client, settings, username="burst-admin")
    created = await client.post(
        "/api/v1/admin/models",
        json={
            "id": "prompt-only",
            "provider": "simulator",
            "upstream_model": "prompt-only",
            "pricing": {"unit_tokens": 1, "input_credits": "1", "output_credits": "0"},
            "max_output_tokens": 16,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    token = await client_token(client, "burst")
    body = {"model": "prompt-only", "messages": HELLO, "max_tokens": 1}
    probe_user = await funded_client_token(client, settings, "burst-probe", amount="1000")
    prompt_cost = Credits.parse((await client.post(GENERATIONS, json=body, headers=bearer(probe_user))).json()["cost"])
    funds = Credits(prompt_cost.micros * 3)
    await fund(client, admin, await user_id_of(client, token), str(funds))
    responses = await asyncio.gather(*(client.post(GENERATIONS, json=body, headers=bearer(token)) for _ in range(50)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 3
    assert statuses.count(402) == 47
    assert await ledger_violations(clean_db) == []


async def test_parallel_streams_overdraw_by_at_most_one_completion(settings: Settings, clean_db: AsyncEngine) -> None:
    """The issue's scenario: 1 credit, 40 parallel streams of gemini-flash with max_tokens 1000 (10 credits each
    at most). Only what the balance less the output reserves of the running ones covers may start."""
    app = create_app(replace_settings(settings, providers={"simulator_token_delay_ms": 2}))
    async with serve_on_loopback(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        token = await funded_client_token(http, settings, "overdraft", amount="1")
        body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 1000, "stream": True}

        async def stream() -> tuple[int, str]:
            async with http.stream("POST", GENERATIONS, json=body, headers=bearer(token)) as response:
                content = (await response.aread()).decode()
                return response.status_code, content

        answers = await asyncio.gather(*(stream() for _ in range(40)))
        balance = Credits.parse((await http.get("/api/v1/me/balance", headers=bearer(token))).json()["balance"])
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 1, statuses
    refused = [json.loads(content) for status, content in answers if status != 200]
    assert {(problem["status"], problem["code"]) for problem in refused} == {(402, "insufficient_balance")}
    done = _final_event(next(content for status, content in answers if status == 200))
    assert done["usage"]["output_tokens"] == 1000
    most = GEMINI_FLASH.cost(Usage(done["usage"]["input_tokens"], 1000))
    assert balance >= Credits.whole(1) - most
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


def _final_event(stream: str) -> dict[str, Any]:
    events = [block for block in stream.replace("\r\n", "\n").split("\n\n") if block.strip()]
    fields = dict(line.split(": ", 1) for line in events[-1].splitlines() if not line.startswith(":"))
    assert fields["event"] == "done", stream[-500:]
    final: dict[str, Any] = json.loads(fields["data"])
    return final


async def test_a_client_that_disconnects_is_charged_only_for_what_was_read(
    settings: Settings, clean_db: AsyncEngine
) -> None:
    app = create_app(replace_settings(settings, providers={"simulator_token_delay_ms": 50}))
    async with serve_on_loopback(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        token = await funded_client_token(http, settings, "gen7")
        body = {"model": "dr14", "messages": HELLO, "max_tokens": 200, "stream": True}
        async with aconnect_sse(http, "POST", GENERATIONS, json=body, headers=bearer(token)) as source:
            generation_id = source.response.headers["x-generation-id"]
            deltas = 0
            async for event in source.aiter_sse():
                deltas += event.event == "delta"
                if deltas == 3:
                    break
        await asyncio.sleep(0.5)
        generation = (await http.get(f"{GENERATIONS}/{generation_id}", headers=bearer(token))).json()
    assert generation["status"] == "cancelled"
    assert 3 <= generation["usage"]["output_tokens"] <= 5
    assert generation["cost"] == str(
        DR14.cost(Usage(generation["usage"]["input_tokens"], generation["usage"]["output_tokens"]))
    )
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_admin_usage_groups_spend_and_tokens(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    token = await funded_client_token(client, settings, "usage1")
    for model in ("dr14", "dr14", "gemini-flash"):
        body = {"model": model, "messages": HELLO, "max_tokens": 4}
        assert (await client.post(GENERATIONS, json=body, headers=bearer(token))).status_code == 200
    admin = await admin_token(client, settings, username="usage-admin")
    report = (await client.get("/api/v1/admin/usage?group_by=model", headers=bearer(admin))).json()
    by_model = {row["key"]: row for row in report["items"]}
    assert by_model["dr14"]["requests"] == 2
    assert by_model["gemini-flash"]["output_tokens"] == 4
    assert by_model["gemini-flash"].keys() >= {"cached_input_tokens", "cache_write_tokens", "reasoning_tokens"}
    assert report["items"][0]["key"] == "dr14"
    empty = await client.get("/api/v1/admin/usage?group_by=user&from=2000-01-01&to=2000-01-02", headers=bearer(admin))
    assert empty.json()["items"] == []
    bad = await client.get("/api/v1/admin/usage?from=yesterday", headers=bearer(admin))
    assert bad.status_code == 422


async def test_a_chunked_body_over_one_mebibyte_is_413(served: httpx.AsyncClient, settings: Settings) -> None:
    token = await funded_client_token(served, settings, "chunked")

    async def chunks() -> Any:
        yield b'{"model": "dr14", "messages": [{"role": "user", "content": "'
        for _ in range(1100):
            yield b"x" * 1024
        yield b'"}]}'

    response = await served.post(
        GENERATIONS, content=chunks(), headers=bearer(token) | {"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


class SettlementDown(PgGenerationBilling):
    """The database is gone by the time a stream settles: the pool gives up."""

    async def settle(self, settlement: Settlement) -> Credits | None:
        raise StorageUnavailable from TimeoutError()


@pytest.mark.parametrize("path", [GENERATIONS, "/v1/chat/completions"])
async def test_a_stream_whose_settlement_fails_still_ends_with_an_error_event(
    settings: Settings, clean_db: AsyncEngine, path: str
) -> None:
    """R4 (exactly one final event) even then; the generation stays `running` for the reaper."""
    down = Provider(scope=Scope.APP)
    down.provide(SettlementDown, provides=GenerationBilling, override=True)
    async with AsyncTestClient(app=create_app(settings, down)) as client:
        token = await funded_client_token(client, settings, f"down{len(path)}")
        body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 3, "stream": True}
        async with aconnect_sse(client, "POST", path, json=body, headers=bearer(token)) as source:
            events = [event async for event in source.aiter_sse()]
    last = json.loads(events[-1].data) if events[-1].data != "[DONE]" else json.loads(events[-2].data)
    if path == GENERATIONS:
        assert [event.event for event in events][-1] == "error"
        assert (last["code"], last["usage"]["output_tokens"]) == ("service_unavailable", 3)
        assert last["cost"] == str(GEMINI_FLASH.cost(Usage(**last["usage"])))
    else:
        assert last["error"]["code"] == "service_unavailable"
    async with clean_db.connect() as connection:
        statuses = (await connection.execute(text("SELECT status FROM generations"))).scalars().all()
    assert statuses == ["running"]
