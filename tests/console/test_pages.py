"""The dashboard and the users pages through the app's ASGI interface: the same use cases as the admin API."""

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

from entrypoints.settings import Settings
from tests.console.test_session import form_token, sign_in
from tests.support.api import admin_token, bearer, funded_client_token, register

_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


async def _admin_console(client: AsyncTestClient[Litestar], settings: Settings) -> str:
    token = await admin_token(client, settings)
    assert await sign_in(client, "root") == "/admin/"
    return token


async def test_the_dashboard_draws_its_charts(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    await _admin_console(client, settings)
    page = await client.get("/admin/")
    assert page.status_code == 200
    assert page.text.count("<svg") == 4
    assert page.text.count('class="bar"') == 2 * 30  # 30 days in each day chart; no model has generations yet


async def test_the_dashboard_counts_todays_generations_per_day_and_model(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    token = await funded_client_token(client, settings, "pat")
    generation = {"model": "dr14", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 2}
    for _ in range(3):
        assert (await client.post("/api/v1/generations", json=generation, headers=bearer(token))).status_code == 200
    await _admin_console(client, settings)
    page = (await client.get("/admin/")).text
    assert page.count('aria-label="dr14: 3 generations"') == 1
    assert len(re.findall(r'aria-label="[^"]*: 3 generations"', page)) == 2  # today's bar, and the model's
    assert len(re.findall(r'aria-label="[^"]*: 0 generations"', page)) == 29
    pat = next(line for line in (await client.get("/admin/users?q=pat")).text.splitlines() if ">pat<" in line)
    user_page = (await client.get(re.findall(r'href="([^"]+)"', pat)[0])).text
    assert user_page.count("<td>dr14</td>") == 3


async def test_a_resubmitted_adjustment_is_one_ledger_row(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    token = await _admin_console(client, settings)
    user = await register(client, "pat")
    form = await client.get(f"/admin/users/{user['id']}")
    found = _KEY.search(form.text)
    assert found
    submission = {
        "_csrf_token": await form_token(client, f"/admin/users/{user['id']}"),
        "idempotency_key": found.group(1),
        "amount": "12.5",
        "reason": "pilot",
    }
    for _ in range(2):
        done = await client.post(f"/admin/users/{user['id']}/balance", data=submission)
        assert done.status_code == 200
        assert "the balance is now 12.5" in done.text
    ledger = (await client.get(f"/api/v1/admin/users/{user['id']}/transactions", headers=bearer(token))).json()
    assert [row["amount"] for row in ledger["items"]] == ["12.5"]


async def test_errors_are_shown_next_to_their_field_with_the_api_code(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await _admin_console(client, settings)
    user = await register(client, "pat")
    csrf = await form_token(client, f"/admin/users/{user['id']}")
    zero = await client.post(
        f"/admin/users/{user['id']}/balance", data={"_csrf_token": csrf, "amount": "0", "reason": "nothing"}
    )
    assert zero.status_code == 422
    assert re.search(r'id="amount-error"[^>]*>[^<]+<code>validation_error</code>', zero.text)
    root = next(row for row in (await client.get("/admin/users?q=roo")).text.split("<tr>") if ">root<" in row)
    root_id = re.search(r"/admin/users/([0-9a-f-]{36})", root)
    assert root_id
    last = await client.post(
        f"/admin/users/{root_id.group(1)}/account", data={"_csrf_token": csrf, "is_active": "false"}
    )
    assert last.status_code == 422
    assert re.search(r'id="is_active-error"[^>]*>[^<]+<code>last_admin</code>', last.text)


async def test_the_search_finds_usernames_by_substring(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    await _admin_console(client, settings)
    for name in ("alice", "malice", "bob"):
        await register(client, name)
    rows = (await client.get("/admin/users?q=LIC", headers={"HX-Request": "true"})).text
    assert "alice" in rows
    assert "malice" in rows
    assert "bob" not in rows
    assert "<html" not in rows
