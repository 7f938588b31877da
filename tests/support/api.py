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
