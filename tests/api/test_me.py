import base64
import hashlib
import json
import time

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token, fund, login, register, user_id_of


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
    user_id = await user_id_of(client, token)
    for amount in ("1", "2", "3"):
        await fund(client, admin, user_id, amount)
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


def _forged(secret: str, sub: str, **changes: object) -> str:
    now = int(time.time())
    claims = {"iss": "creditgate", "sub": sub, "role": "admin", "jti": "j", "iat": now, "exp": now + 900}
    claims |= {"typ": "access"}
    claims.update(changes)
    algorithm = str(claims.pop("alg", "HS256"))
    key = str(claims.pop("key_", secret))
    payload = {k: v for k, v in claims.items() if v is not None}
    if algorithm == "none":
        return jwt.encode(payload, None, algorithm="none")  # type: ignore[arg-type]
    return jwt.encode(payload, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "changes",
    [
        {"alg": "none"},
        {"alg": "HS512"},
        {"key_": "another-secret-of-plenty-of-bytes-0123456789"},
        {"exp": 1},
        {"iat": 4_000_000_000},
        {"exp": None},
        {"jti": None},
        {"typ": "refresh"},
        {"typ": "key_access"},
        {"iss": "someone-else"},
    ],
)
async def test_forged_tokens_are_refused(
    client: AsyncTestClient[Litestar], settings: Settings, changes: dict[str, object]
) -> None:
    token = await client_token(client, "forger")
    user_id = (await client.get("/api/v1/me", headers=bearer(token))).json()["id"]
    forged = _forged(settings.security.require_jwt_secret(), user_id, **changes)
    response = await client.get("/api/v1/admin/users", headers=bearer(forged))
    assert response.status_code == 401, changes
    assert response.json()["code"] == "invalid_token"


async def test_a_tampered_role_claim_is_refused(client: AsyncTestClient[Litestar]) -> None:
    token = await client_token(client, "tamper")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    response = await client.get("/api/v1/admin/users", headers=bearer(f"{header}.{forged_payload}.{signature}"))
    assert response.status_code == 401


async def test_refresh_tokens_are_stored_only_as_digests(
    client: AsyncTestClient[Litestar], clean_db: AsyncEngine
) -> None:
    await register(client, "digest")
    pair = await login(client, "digest")
    async with clean_db.connect() as connection:
        stored = (await connection.execute(text("SELECT token_hash FROM refresh_tokens"))).scalars().all()
    assert stored == [hashlib.sha256(pair["refresh_token"].encode()).digest()]
