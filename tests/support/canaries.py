"""A representative flow whose every secret is a recognisable canary, to be searched for in logs afterwards."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from entrypoints.settings import Settings
from tests.support.api import Client, bearer
from tests.support.keys import signed_login

TYPEID = {
    "typeid": "canary",
    "scale": 10,
    "system": "You grade essays. Answer JSON {score, explanation}.",
    "user": "Reference:\n{reference}\n\nText:\n{text}\n\nScore from 0 to {scale}.",
    "model": "gemini-flash",
    "llm": "simulator",
}


@dataclass
class Flow:
    canaries: dict[str, str] = field(default_factory=dict)
    user_id: str = ""
    api_key: str = ""
    statuses: list[int] = field(default_factory=list)

    def hits(self, text: str) -> list[str]:
        return [name for name, value in self.canaries.items() if value in text]


async def representative_flow(http: Client, settings: Settings, **headers: str) -> Flow:
    """Register, log in, refresh, admin creates a key (its secret), HMAC login, a generation, a failed login and
    a forged bearer token; `headers` go with every request (a proxy's `X-Forwarded-*`)."""
    flow = Flow()
    tag = uuid.uuid4().hex[:10]
    username, admin_name = f"canary-{tag}", f"canary-admin-{tag}"
    password = flow.canaries["password"] = f"pw-canary-{tag}-correct"
    admin_password = flow.canaries["admin password"] = f"pw-canary-{tag}-admin"
    flow.canaries["wrong password"] = f"pw-canary-{tag}-wrong"
    forged = flow.canaries["forged Authorization value"] = f"forged-canary-{tag}"

    async def call(method: str, path: str, expected: int, token: str | None = None, **kwargs: Any) -> Any:
        extra = bearer(token) if token else {}
        response = await http.request(method, path, headers=headers | extra, **kwargs)
        flow.statuses.append(response.status_code)
        assert response.status_code == expected, (method, path, response.text)
        return response.json() if response.content else None

    flow.user_id = (
        await call("POST", "/api/v1/auth/register", 201, json={"username": username, "password": password})
    )["id"]
    first = await call("POST", "/api/v1/auth/login", 200, json={"username": username, "password": password})
    pair = await call("POST", "/api/v1/auth/refresh", 200, json={"refresh_token": first["refresh_token"]})
    await create_admin(settings, Registration(username=admin_name, password=admin_password))
    admin = await call("POST", "/api/v1/auth/login", 200, json={"username": admin_name, "password": admin_password})
    admin_token = admin["access_token"]
    await call("POST", "/api/v1/types", 201, admin_token, json=TYPEID)
    funding = {"amount": "100", "reason": "canary"}
    await call("POST", f"/api/v1/admin/users/{flow.user_id}/balance", 200, admin_token, json=funding)
    key = await call("POST", "/api/v1/keys", 201, admin_token, json={"user_id": flow.user_id, "typeid": "canary"})
    flow.api_key = key["api_key"]
    key_pair = await call("POST", "/api/v1/auth", 200, json=signed_login(key["api_key"], username, key["secret_key"]))
    generation = {"model": "gemini-flash", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8}
    await call("POST", "/api/v1/generations", 200, pair["access_token"], json=generation)
    await call("GET", "/api/v1/me", 200, key_pair["access_token"])
    wrong = {"username": username, "password": flow.canaries["wrong password"]}
    await call("POST", "/api/v1/auth/login", 401, json=wrong)
    await call("GET", "/api/v1/me", 401, forged)

    flow.canaries |= {
        "API secret": key["secret_key"],
        "access token": first["access_token"],
        "refresh token": first["refresh_token"],
        "refreshed access token": pair["access_token"],
        "refreshed refresh token": pair["refresh_token"],
        "admin access token": admin_token,
        "admin refresh token": admin["refresh_token"],
        "key access token": key_pair["access_token"],
        "key refresh token": key_pair["refresh_token"],
    }
    return flow
