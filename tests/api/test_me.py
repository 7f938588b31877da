from litestar import Litestar
from litestar.testing import AsyncTestClient

from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token


async def test_me_balance_and_transactions_need_a_token(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/api/v1/me", "/api/v1/me/balance", "/api/v1/me/transactions"):
        response = await client.get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "unauthorized"


async def test_balance_is_a_decimal_string_in_credits(client: AsyncTestClient[Litestar]) -> None:
    token = await client_token(client, "lena")
    response = await client.get("/api/v1/me/balance", headers=bearer(token))
    assert response.json() == {"balance": "0", "currency": "credits"}


async def test_transactions_page_newest_first_with_a_cursor(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    token = await client_token(client, "mike")
    admin = await admin_token(client, settings)
    user_id = (await client.get("/api/v1/me", headers=bearer(token))).json()["id"]
    for amount in ("1", "2", "3"):
        adjusted = await client.post(
            f"/api/v1/admin/users/{user_id}/balance", json={"amount": amount, "reason": "top-up"}, headers=bearer(admin)
        )
        assert adjusted.status_code == 200, adjusted.text
    first = (await client.get("/api/v1/me/transactions?limit=2", headers=bearer(token))).json()
    assert [t["amount"] for t in first["items"]] == ["3", "2"]
    assert first["next_cursor"]
    second = (
        await client.get(f"/api/v1/me/transactions?limit=2&cursor={first['next_cursor']}", headers=bearer(token))
    ).json()
    assert [t["amount"] for t in second["items"]] == ["1"]
    assert second["next_cursor"] is None
    assert (await client.get("/api/v1/me/balance", headers=bearer(token))).json()["balance"] == "6"


async def test_paging_limits_are_enforced(client: AsyncTestClient[Litestar]) -> None:
    token = await client_token(client, "nina")
    for query in ("limit=0", "limit=201", "limit=abc", "cursor=%21%21garbage"):
        response = await client.get(f"/api/v1/me/transactions?{query}", headers=bearer(token))
        assert response.status_code in {400, 422}, query
        assert response.json()["code"] == "validation_error", query


async def test_a_deactivated_user_is_refused_at_once(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    token = await client_token(client, "oscar")
    admin = await admin_token(client, settings)
    user_id = (await client.get("/api/v1/me", headers=bearer(token))).json()["id"]
    patched = await client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False}, headers=bearer(admin))
    assert patched.json()["is_active"] is False
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    login = await client.post("/api/v1/auth/login", json={"username": "oscar", "password": "correct horse battery"})
    assert login.status_code == 401
