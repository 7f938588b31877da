"""A key-scoped token works only while its key's subscription is active, on every route and on refresh; ending a
key's or a user's sessions (suspension, revocation, deactivation, demotion) is final for the tokens issued before."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from entrypoints.settings import Settings
from tests.api.test_comparison import World, world_on
from tests.support.api import admin_token, bearer, login

REFRESH = "/api/v1/auth/refresh"
GENERATION = {"model": "gemini-flash", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
CHAT = {"model": "gemini-flash", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


@pytest.fixture
async def world(client: AsyncTestClient[Litestar], settings: Settings) -> World:
    return await world_on(client, settings)


async def _key_pair(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    key = await world.key()
    response = await world.login(key)
    assert response.status_code == 200, response.text
    return key, dict(response.json())


async def _patch(world: World, key: dict[str, Any], body: dict[str, Any]) -> Any:
    return await world.client.patch(f"/api/v1/keys/{key['api_key']}", json=body, headers=bearer(world.admin))


async def _calls(world: World, token: str) -> dict[str, Any]:
    client = world.client
    return {
        "generation": await client.post("/api/v1/generations", json=GENERATION, headers=bearer(token)),
        "chat": await client.post("/v1/chat/completions", json=CHAT, headers=bearer(token)),
        "me": await client.get("/api/v1/me", headers=bearer(token)),
        "models": await client.get("/api/v1/models", headers=bearer(token)),
    }


def _code(response: Any) -> str:
    body = response.json()
    return str(body["error"]["code"] if "error" in body else body["code"])


async def test_an_active_key_token_works_everywhere(world: World) -> None:
    _, pair = await _key_pair(world)
    assert {name: r.status_code for name, r in (await _calls(world, pair["access_token"])).items()} == dict.fromkeys(
        ("generation", "chat", "me", "models"), 200
    )


@pytest.mark.parametrize("change", [{"status": "suspended"}, {"expires_at": PAST}])
async def test_an_inactive_subscription_refuses_its_tokens_on_every_route_and_on_refresh(
    world: World, change: dict[str, Any]
) -> None:
    key, pair = await _key_pair(world)
    assert (await _patch(world, key, change)).status_code == 200
    for name, response in (await _calls(world, pair["access_token"])).items():
        assert (name, response.status_code, _code(response)) == (name, 403, "subscription_inactive")
    refreshed = await world.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "invalid_token"


async def test_a_revoked_key_refuses_its_tokens_with_key_revoked(world: World) -> None:
    key, pair = await _key_pair(world)
    assert (await world.client.delete(f"/api/v1/keys/{key['api_key']}", headers=bearer(world.admin))).status_code == 204
    for name, response in (await _calls(world, pair["access_token"])).items():
        assert (name, response.status_code, _code(response)) == (name, 401, "key_revoked")
    assert (await world.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).status_code == 401


async def test_an_expired_key_refresh_does_not_rotate(world: World) -> None:
    key, pair = await _key_pair(world)
    await _patch(world, key, {"expires_at": PAST})
    assert (await world.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).status_code == 401
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await _patch(world, key, {"expires_at": future})).json()["subscription"] == "active"
    assert (await world.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).status_code == 401


@pytest.mark.parametrize("change", [{"status": "active"}, {"credit_limit": "5"}, {}, {"expires_at": PAST}])
async def test_a_revoked_key_is_final(world: World, change: dict[str, Any]) -> None:
    key, pair = await _key_pair(world)
    await world.client.delete(f"/api/v1/keys/{key['api_key']}", headers=bearer(world.admin))
    refused = await _patch(world, key, change)
    assert (refused.status_code, refused.json()["code"]) == (409, "key_revoked")
    assert (await world.client.delete(f"/api/v1/keys/{key['api_key']}", headers=bearer(world.admin))).status_code == 204
    listed = (await world.client.get("/api/v1/keys", headers=bearer(world.admin))).json()["items"]
    assert [k["subscription"] for k in listed if k["api_key"] == key["api_key"]] == ["revoked"]
    assert (await world.client.get("/api/v1/me", headers=bearer(pair["access_token"]))).status_code == 401
    assert (await world.login(key)).json()["code"] == "key_revoked"


async def test_a_suspended_then_reactivated_key_needs_a_fresh_login(world: World) -> None:
    key, pair = await _key_pair(world)
    await _patch(world, key, {"status": "suspended"})
    assert (await _patch(world, key, {"status": "active"})).json()["subscription"] == "active"
    old = await world.client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert (old.status_code, old.json()["code"]) == (401, "invalid_token")
    assert (await world.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).status_code == 401
    fresh = (await world.login(key)).json()
    assert (await world.client.get("/api/v1/me", headers=bearer(fresh["access_token"]))).status_code == 200
    refreshed = await world.client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})
    assert refreshed.status_code == 200


async def test_a_deactivated_then_reactivated_user_needs_a_fresh_login(world: World) -> None:
    client = world.client
    user_pair = await login(client, "carla")
    _, key_pair = await _key_pair(world)
    user = f"/api/v1/admin/users/{world.user_id}"
    assert (await client.patch(user, json={"is_active": False}, headers=bearer(world.admin))).status_code == 200
    assert (await client.patch(user, json={"is_active": True}, headers=bearer(world.admin))).status_code == 200
    for pair in (user_pair, key_pair):
        assert (await client.get("/api/v1/me", headers=bearer(pair["access_token"]))).status_code == 401
        assert (await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})).status_code == 401
    fresh = await login(client, "carla")
    assert (await client.get("/api/v1/me", headers=bearer(fresh["access_token"]))).status_code == 200
    assert (await client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})).status_code == 200


async def test_a_demoted_admin_needs_a_fresh_login(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    root = await admin_token(client, settings)
    await admin_token(client, settings, username="deputy")
    deputy = await login(client, "deputy")
    deputy_id = (await client.get("/api/v1/me", headers=bearer(deputy["access_token"]))).json()["id"]
    user = f"/api/v1/admin/users/{deputy_id}"
    assert (await client.patch(user, json={"role": "client"}, headers=bearer(root))).status_code == 200
    assert (await client.patch(user, json={"role": "admin"}, headers=bearer(root))).status_code == 200
    assert (await client.get("/api/v1/admin/users", headers=bearer(deputy["access_token"]))).status_code == 401
    assert (await client.post(REFRESH, json={"refresh_token": deputy["refresh_token"]})).status_code == 401
    fresh = await login(client, "deputy")
    assert (await client.get("/api/v1/admin/users", headers=bearer(fresh["access_token"]))).status_code == 200
