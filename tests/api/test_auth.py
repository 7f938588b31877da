import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import PASSWORD, bearer, login, register
from tests.support.settings import replace_settings

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


async def test_registration_creates_a_client_with_an_empty_wallet(client: AsyncTestClient[Litestar]) -> None:
    user = await register(client, "alice", email="alice@example.com")
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.com"
    assert user["role"] == "client"
    assert user["balance"] == "0"
    assert user["is_active"] is True
    assert set(user) == {"id", "username", "email", "role", "balance", "is_active", "created_at"}


async def test_signup_credits_are_granted_as_one_ledger_row(settings: Settings, clean_db: object) -> None:
    app = create_app(replace_settings(settings, accounts={"signup_credits": "2.5"}))
    async with AsyncTestClient(app=app) as client:
        user = await register(client, "bob")
        token = (await login(client, "bob"))["access_token"]
        transactions = (await client.get("/api/v1/me/transactions", headers=bearer(token))).json()
    assert user["balance"] == "2.5"
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in transactions["items"]] == [("signup", "2.5", "2.5")]


async def test_usernames_are_unique_regardless_of_case(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "Carol")
    response = await client.post(REGISTER, json={"username": "carol", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ab", "password": PASSWORD}, "username"),
        ({"username": "a" * 65, "password": PASSWORD}, "username"),
        ({"username": "bad name", "password": PASSWORD}, "username"),
        ({"username": "alice\n", "password": PASSWORD}, "username"),
        ({"username": "dave", "password": PASSWORD, "email": "dave@example.com\n"}, "email"),
        ({"username": "dave", "password": "short"}, "password"),
        ({"username": "dave", "password": PASSWORD, "email": "not-an-email"}, "email"),
        ({"password": PASSWORD}, "username"),
    ],
)
async def test_invalid_registrations_are_422_with_the_field(
    client: AsyncTestClient[Litestar], body: dict[str, str], field: str
) -> None:
    response = await client.post(REGISTER, json=body)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "validation_error"
    assert any(field in error["field"] for error in problem["errors"]), problem


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    extra=st.dictionaries(
        st.sampled_from(["role", "balance", "is_active", "id", "user_id", "created_at"]),
        st.one_of(st.just("admin"), st.just("1000000"), st.booleans(), st.integers(), st.none()),
        min_size=1,
    )
)
async def test_registration_never_accepts_privileged_fields(client: AsyncTestClient[Litestar], extra: dict) -> None:  # type: ignore[type-arg]
    response = await client.post(REGISTER, json={"username": "mallory", "password": PASSWORD, **extra})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_malformed_json_is_400_and_names_it(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(REGISTER, content=b'{"username": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_a_body_over_one_mebibyte_is_413(client: AsyncTestClient[Litestar]) -> None:
    big = json.dumps({"username": "x" * (1024 * 1024), "password": PASSWORD})
    response = await client.post(REGISTER, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_login_returns_a_bearer_token_pair(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "erin")
    pair = await login(client, "erin")
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert pair["access_token"] != pair["refresh_token"]
    me = await client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert me.json()["username"] == "erin"


async def test_unknown_user_and_wrong_password_answer_identically(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "frank")
    wrong = await client.post(LOGIN, json={"username": "frank", "password": "wrong password"})
    unknown = await client.post(LOGIN, json={"username": "nobody", "password": "wrong password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"


async def test_login_failures_are_throttled_per_username(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "grace")
    for _ in range(10):
        failed = await client.post(LOGIN, json={"username": "grace", "password": "wrong password"})
        assert failed.status_code == 401
    throttled = await client.post(LOGIN, json={"username": "grace", "password": PASSWORD})
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_requests"
    assert int(throttled.headers["retry-after"]) >= 1


async def test_login_failures_are_throttled_per_address(settings: Settings, clean_db: object) -> None:
    app = create_app(replace_settings(settings, accounts={"login_failure_limit": 2}))
    async with AsyncTestClient(app=app) as client:
        for attempt in range(6):
            failed = await client.post(LOGIN, json={"username": f"user{attempt}", "password": "wrong password"})
            assert failed.status_code == 401
        throttled = await client.post(LOGIN, json={"username": "someone-else", "password": "wrong password"})
    assert throttled.status_code == 429


async def test_refresh_rotates_and_the_old_token_is_dead(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "heidi")
    first = await login(client, "heidi")
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_refresh_token_revokes_the_whole_family(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "ivan")
    first = await login(client, "ivan")
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_reused"
    after = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401


async def test_concurrent_refreshes_of_one_token_have_one_winner_and_revoke_the_family(
    served: httpx.AsyncClient,
) -> None:
    await register(served, "judy")
    token = (await login(served, "judy"))["refresh_token"]
    responses = await asyncio.gather(*(served.post(REFRESH, json={"refresh_token": token}) for _ in range(10)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1
    assert [r.json()["code"] for r in responses if r.status_code != 200] == ["token_reused"] * 9
    dead = await served.post(REFRESH, json={"refresh_token": winners[0].json()["refresh_token"]})
    assert dead.status_code == 401


async def test_a_consumed_token_presented_after_its_family_was_revoked_is_still_reused(
    client: AsyncTestClient[Litestar],
) -> None:
    await register(client, "judith")
    first = await login(client, "judith")
    await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    for _ in range(2):
        reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
        assert reused.json()["code"] == "token_reused"


async def test_an_unknown_refresh_token_is_invalid(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(REFRESH, json={"refresh_token": "not-a-token"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_logout_kills_the_family_and_is_idempotent(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "kate")
    pair = await login(client, "kate")
    assert (await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})).status_code == 204
    assert (await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})).status_code == 204
    refreshed = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401


async def test_registrations_are_throttled_per_address(settings: Settings, clean_db: object) -> None:
    app = create_app(replace_settings(settings, accounts={"registrations_per_hour": 2}))
    async with AsyncTestClient(app=app) as client:
        await register(client, "reg1")
        await register(client, "reg2")
        third = await client.post(REGISTER, json={"username": "reg3", "password": PASSWORD})
    assert third.status_code == 429
    assert third.json()["code"] == "too_many_requests"
    assert 1 <= int(third.headers["retry-after"]) <= 3600


async def test_a_weaker_stored_hash_is_upgraded_at_the_next_login(settings: Settings, clean_db: AsyncEngine) -> None:
    async with AsyncTestClient(app=create_app(settings)) as cheap:
        await register(cheap, "legacy")
    strong = create_app(replace_settings(settings, security={"argon2_profile": "rfc9106_low_memory"}))
    async with AsyncTestClient(app=strong) as client:
        await login(client, "legacy")
    async with clean_db.connect() as connection:
        stored = await connection.scalar(text("SELECT password_hash FROM users WHERE username = 'legacy'"))
    assert stored.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in stored


async def test_a_burst_of_failed_logins_evaluates_at_most_the_limit(served: httpx.AsyncClient) -> None:
    await register(served, "burst")
    wrong = {"username": "burst", "password": "wrong password"}
    responses = await asyncio.gather(*(served.post(LOGIN, json=wrong) for _ in range(80)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(401) <= 10, statuses
    assert set(statuses) == {401, 429}
    assert (await served.post(LOGIN, json={"username": "burst", "password": PASSWORD})).status_code == 429


async def test_a_burst_of_registrations_creates_at_most_the_hourly_limit(served: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(served.post(REGISTER, json={"username": f"burst{i}", "password": PASSWORD}) for i in range(60))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 30, statuses
    assert statuses.count(429) == 30
