"""OWASP API4/API6 limits at the HTTP surface: max_tokens caps, page sizes, and a key's credit_limit under a
burst of concurrent requests (RELIABILITY Z5, Z6)."""

import asyncio
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.credits import Credits
from entrypoints.settings import Settings
from tests.api.test_comparison import b64, world_on
from tests.support.api import bearer
from tests.support.audit import ledger_violations
from tests.support.money import generation_violations

HELLO = [{"role": "user", "content": "Hello there"}]


async def _cap(client: AsyncTestClient[Litestar], token: str, model: str) -> int:
    models = (await client.get("/api/v1/models", headers=bearer(token))).json()
    items = models["items"] if isinstance(models, dict) else models
    return int(next(m for m in items if m["id"] == model)["max_output_tokens"])


async def test_max_tokens_above_the_model_cap_is_422_on_both_surfaces(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    world = await world_on(client, settings)
    cap = await _cap(client, world.user, "gemini-flash")
    native = await client.post(
        "/api/v1/generations",
        json={"model": "gemini-flash", "messages": HELLO, "max_tokens": cap + 1},
        headers=bearer(world.user),
    )
    assert native.status_code == 422, native.text
    assert native.json()["code"] == "validation_error"
    assert native.json()["errors"][0]["field"] == "max_tokens"
    for field in ("max_tokens", "max_completion_tokens"):
        openai = await client.post(
            "/v1/chat/completions",
            json={"model": "gemini-flash", "messages": HELLO, field: cap + 1},
            headers=bearer(world.user),
        )
        assert openai.status_code == 422, openai.text
        assert openai.json()["error"]["code"] == "validation_error"
    at_cap = {"model": "gemini-flash", "messages": HELLO, "max_tokens": cap}
    assert (await client.post("/api/v1/generations", json=at_cap, headers=bearer(world.user))).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/me/transactions", "/api/v1/generations", "/api/v1/admin/users"])
async def test_a_page_above_200_is_refused(client: AsyncTestClient[Litestar], settings: Settings, path: str) -> None:
    world = await world_on(client, settings)
    token = world.admin if "/admin/" in path else world.user
    assert (await client.get(f"{path}?limit=200", headers=bearer(token))).status_code == 200
    refused = await client.get(f"{path}?limit=201", headers=bearer(token))
    assert refused.status_code in {400, 422}, refused.text


async def _key_spend(engine: AsyncEngine, api_key: str) -> tuple[int, int]:
    async with engine.connect() as connection:
        spent = await connection.scalar(text("SELECT spent_micros FROM api_keys WHERE api_key = :k"), {"k": api_key})
        ledger = await connection.scalar(
            text("SELECT COALESCE(-SUM(amount), 0) FROM ledger_entries WHERE api_key = :k"), {"k": api_key}
        )
    return int(spent), int(ledger)


@pytest.mark.parametrize("allowed", [1, 4])
async def test_30_concurrent_generations_never_pass_a_key_credit_limit(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine, allowed: int
) -> None:
    """Z6: the simulator produces exactly max_tokens, so each generation costs its reserve R exactly; with
    credit_limit = allowed * R exactly `allowed` of 30 concurrent requests pass and the key never overspends."""
    world = await world_on(client, settings)
    body = {"model": "gemini-flash", "messages": HELLO, "max_tokens": 40}
    probe = await client.post("/api/v1/generations", json=body, headers=bearer(world.user))
    reserve = Credits.parse(probe.json()["cost"])
    limit = Credits(reserve.micros * allowed)
    key, token = await world.key_token(credit_limit=str(limit))
    responses = await asyncio.gather(
        *(client.post("/api/v1/generations", json=body, headers=bearer(token)) for _ in range(30))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == allowed, statuses
    assert all(r.json()["code"] == "key_credit_limit" for r in responses if r.status_code != 200)
    assert statuses.count(402) == 30 - allowed
    spent, ledger = await _key_spend(clean_db, key["api_key"])
    assert spent == ledger == limit.micros
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []


async def test_30_concurrent_comparisons_overshoot_a_key_limit_by_at_most_one_completion(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    """Z6 for text comparison: answers shorter than their reserve free room for more, but the key's spend
    never passes its limit by more than the one comparison admitted just below it."""
    world = await world_on(client, settings)
    key, token = await world.key_token(credit_limit="0.002")
    reference = await client.post("/api/v1/reference", json={"text": b64("the reference")}, headers=bearer(token))
    reference_id = reference.json()["reference_id"]

    async def compare(i: int) -> Any:
        return await client.post(f"/api/v1/compare/{reference_id}", json={"text": b64(f"t{i}")}, headers=bearer(token))

    responses = await asyncio.gather(*(compare(i) for i in range(30)))
    passed = [r for r in responses if r.status_code == 200]
    assert passed
    assert all(r.json()["code"] == "key_credit_limit" for r in responses if r.status_code != 200)
    most_expensive = max(Credits.parse(r.json()["cost"]).micros for r in passed)
    spent, ledger = await _key_spend(clean_db, key["api_key"])
    assert spent == ledger
    assert ledger < Credits.parse("0.002").micros + most_expensive
    assert await ledger_violations(clean_db) == []
    assert await generation_violations(clean_db) == []
