"""The console's session and CSRF rules, through the app's own ASGI interface."""

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

from entrypoints.settings import Settings
from tests.support.api import PASSWORD, admin_token, bearer, register

_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def form_token(client: AsyncTestClient[Litestar], path: str) -> str:
    page = await client.get(path)
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: AsyncTestClient[Litestar], username: str, password: str = PASSWORD) -> str:
    token = await form_token(client, "/admin/login")
    response = await client.post(
        "/admin/login",
        data={"_csrf_token": token, "username": username, "password": password, "next": "/admin/"},
        follow_redirects=False,
    )
    return f"{response.status_code} {response.text}" if response.status_code != 303 else response.headers["location"]


async def test_an_admin_signs_in_and_a_page_needs_the_session(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await admin_token(client, settings)
    anonymous = await client.get("/admin/users", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/admin/login?next=/admin/users")
    assert await sign_in(client, "root") == "/admin/"
    cookie = next(c for c in client.cookies.jar if c.name == "creditgate_console")
    assert cookie.path == "/admin"
    assert (await client.get("/admin/users")).status_code == 200


async def test_a_client_account_cannotsign_in(client: AsyncTestClient[Litestar]) -> None:
    await register(client, "pat")
    refused = await sign_in(client, "pat")
    assert "not an admin" in refused
    assert "<code>forbidden</code>" in refused
    assert (await client.get("/admin/", follow_redirects=False)).status_code == 303


async def test_a_form_posted_without_its_token_is_refused(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await form_token(client, "/admin/login")
    refused = await client.post("/admin/login", data={"username": "root", "password": PASSWORD})
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text


async def test_the_json_api_needs_no_csrf_token(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    token = await admin_token(client, settings)
    assert (await client.get("/api/v1/admin/users", headers=bearer(token))).status_code == 200


async def test_a_demoted_admin_loses_the_console_at_once(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    root = await admin_token(client, settings)
    second = await register(client, "ops")
    await client.patch(f"/api/v1/admin/users/{second['id']}", json={"role": "admin"}, headers=bearer(root))
    assert await sign_in(client, "ops") == "/admin/"
    assert (await client.get("/admin/users")).status_code == 200
    await client.patch(f"/api/v1/admin/users/{second['id']}", json={"role": "client"}, headers=bearer(root))
    after = await client.get("/admin/users", follow_redirects=False)
    assert after.status_code in (303, 403)


async def test_signing_out_ends_the_session(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    await admin_token(client, settings)
    assert await sign_in(client, "root") == "/admin/"
    csrf = await form_token(client, "/admin/")
    out = await client.post("/admin/logout", data={"_csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert (await client.get("/admin/users", follow_redirects=False)).status_code == 303


async def test_an_htmx_request_of_an_ended_session_is_sent_to_sign_in(client: AsyncTestClient[Litestar]) -> None:
    answer = await client.get("/admin/users?q=x", headers={"HX-Request": "true"})
    assert answer.headers["HX-Redirect"].startswith("/admin/login?next=/admin/users")
