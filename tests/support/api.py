"""Helpers that speak the public API the way a client does."""

from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from entrypoints.settings import Settings

Client = AsyncTestClient[Litestar] | httpx.AsyncClient
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/register", json={"username": username, "password": password, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def client_token(client: Client, username: str) -> str:
    await register(client, username)
    return str((await login(client, username))["access_token"])


async def admin_token(client: Client, settings: Settings, username: str = "root") -> str:
    await create_admin(settings, Registration(username=username, password=PASSWORD))
    return str((await login(client, username))["access_token"])


async def user_id_of(client: Client, token: str) -> str:
    return str((await client.get("/api/v1/me", headers=bearer(token))).json()["id"])


async def fund(client: Client, admin: str, user_id: str, amount: str, *, base: str = "") -> dict[str, Any]:
    """The API ring's one way to give a user credits: an admin's balance adjustment of `amount` (`base`: the
    server's URL, for a client without a base URL)."""
    body = {"amount": amount, "reason": "test"}
    response = await client.post(f"{base}/api/v1/admin/users/{user_id}/balance", json=body, headers=bearer(admin))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def funded_client_token(client: Client, settings: Settings, username: str, amount: str = "100") -> str:
    """A client `username` holding `amount` credits, given by an admin `{username}-admin`."""
    token = await client_token(client, username)
    admin = await admin_token(client, settings, username=f"{username}-admin")
    await fund(client, admin, await user_id_of(client, token), amount)
    return token


async def upstream_model_client(client: Client, settings: Settings, model_id: str, prefix: str) -> str:
    """A funded client (100 credits) and a catalog model `model_id` on the `openai` provider (the fake upstream),
    priced 0.001 / 0.002 credits per prompt / completion token."""
    admin = await admin_token(client, settings, username=f"{prefix}-admin")
    model = {
        "id": model_id,
        "provider": "openai",
        "upstream_model": f"fake-{model_id}",
        "pricing": {"unit_tokens": 1, "input_credits": "0.001", "output_credits": "0.002"},
        "max_output_tokens": 1000,
    }
    assert (await client.post("/api/v1/admin/models", json=model, headers=bearer(admin))).status_code == 201
    user = await client_token(client, f"{prefix}-user")
    await fund(client, admin, await user_id_of(client, user), "100")
    return user
