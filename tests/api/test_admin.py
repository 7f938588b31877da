import asyncio
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token, funded_client_token, login, user_id_of
from tests.support.audit import ledger_violations


async def _admin_operations(client: AsyncTestClient[Litestar]) -> list[tuple[str, str]]:
    document = (await client.get("/api-docs/openapi.json")).json()
    return [
        (method.upper(), path.replace("{user_id}", str(uuid.uuid4())).replace("{generation_id}", str(uuid.uuid4())))
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/admin")
        for method in operations
    ]


async def _user_id(client: AsyncTestClient[Litestar], token: str) -> str:
    return str((await client.get("/api/v1/me", headers=bearer(token))).json()["id"])


async def test_every_admin_operation_refuses_a_client(client: AsyncTestClient[Litestar]) -> None:
    token = await client_token(client, "pat")
    operations = await _admin_operations(client)
    assert len(operations) >= 5
    for method, path in operations:
        response = await client.request(method, path, headers=bearer(token), json={})
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "forbidden"


async def test_every_admin_operation_needs_a_token(client: AsyncTestClient[Litestar]) -> None:
    for method, path in await _admin_operations(client):
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (method, path)


async def test_admin_lists_gets_and_patches_users(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "quinn"))
    listed = (await client.get("/api/v1/admin/users", headers=bearer(admin))).json()
    assert {u["username"] for u in listed["items"]} == {"root", "quinn"}
    assert (await client.get(f"/api/v1/admin/users/{user_id}", headers=bearer(admin))).json()["username"] == "quinn"
    promoted = await client.patch(f"/api/v1/admin/users/{user_id}", json={"role": "admin"}, headers=bearer(admin))
    assert promoted.json()["role"] == "admin"
    missing = await client.get(f"/api/v1/admin/users/{uuid.uuid4()}", headers=bearer(admin))
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


async def test_patch_refuses_unknown_fields(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "rita"))
    response = await client.patch(f"/api/v1/admin/users/{user_id}", json={"balance": "100"}, headers=bearer(admin))
    assert response.status_code == 422


@pytest.mark.parametrize("body", [{"is_active": 0}, {"is_active": "false"}, {"role": 1}])
async def test_patch_decodes_strictly(
    client: AsyncTestClient[Litestar], settings: Settings, body: dict[str, object]
) -> None:
    """A value of another JSON type than the schema says is refused, never converted (`0` is not `false`)."""
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "sven"))
    response = await client.patch(f"/api/v1/admin/users/{user_id}", json=body, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == next(iter(body))
    user = (await client.get(f"/api/v1/admin/users/{user_id}", headers=bearer(admin))).json()
    assert user["is_active"] is True


async def _adjust(
    client: AsyncTestClient[Litestar], admin: str, user_id: str, body: dict[str, Any], key: str | None = None
) -> Any:
    headers = bearer(admin) | ({"Idempotency-Key": key} if key else {})
    return await client.post(f"/api/v1/admin/users/{user_id}/balance", json=body, headers=headers)


async def test_a_signed_adjustment_is_one_ledger_row(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "sam"))
    credited = (await _adjust(client, admin, user_id, {"amount": "10.5", "reason": "welcome"})).json()
    debited = (await _adjust(client, admin, user_id, {"amount": "-12", "reason": "chargeback"})).json()
    assert credited["balance"] == "10.5"
    assert debited["balance"] == "-1.5"
    assert debited["transaction"]["kind"] == "admin_adjustment"
    assert debited["transaction"]["reason"] == "chargeback"
    ledger = (await client.get(f"/api/v1/admin/users/{user_id}/transactions", headers=bearer(admin))).json()
    assert [t["amount"] for t in ledger["items"]] == ["-12", "10.5"]
    assert await ledger_violations(clean_db) == []


@pytest.mark.parametrize("amount", ["0", "0.0000001", "1e3", "abc", "", "9223372036855"])
async def test_bad_amounts_are_422(client: AsyncTestClient[Litestar], settings: Settings, amount: str) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "tina"))
    response = await _adjust(client, admin, user_id, {"amount": amount, "reason": "x"})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_a_balance_beyond_its_bound_is_422_and_nothing_is_written(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "wanda"))
    steps = [
        ("8000000000000", 422),  # the two adjustments: past BIGINT together, past the bound alone
        ("8000000000000", 422),
        ("600000000000", 200),
        ("600000000000", 422),
        ("-600000000000", 200),
        ("-600000000000", 200),
        ("-600000000000", 422),
        ("-8999999999999.999999", 422),  # the largest amount a request may send (`application.patterns`)
    ]
    for number, (amount, status) in enumerate(steps):
        for _ in range(2):  # a retry with the same Idempotency-Key gets the same answer
            response = await _adjust(client, admin, user_id, {"amount": amount, "reason": "x"}, key=f"big-{number}")
            assert response.status_code == status, (amount, response.text)
            if status == 422:
                assert response.json()["code"] == "balance_out_of_range"
                assert response.json()["errors"][0]["field"] == "amount"
    ledger = (await client.get(f"/api/v1/admin/users/{user_id}/transactions", headers=bearer(admin))).json()
    assert [t["amount"] for t in reversed(ledger["items"])] == ["600000000000", "-600000000000", "-600000000000"]
    assert (await client.get(f"/api/v1/admin/users/{user_id}", headers=bearer(admin))).json()["balance"] == (
        "-600000000000"
    )
    assert await ledger_violations(clean_db) == []


async def test_adjusting_a_missing_user_is_404(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    admin = await admin_token(client, settings)
    response = await _adjust(client, admin, str(uuid.uuid4()), {"amount": "1", "reason": "x"})
    assert response.status_code == 404


async def test_the_same_idempotency_key_and_body_apply_once_under_concurrency(
    client: AsyncTestClient[Litestar], settings: Settings, clean_db: AsyncEngine
) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "uma"))
    body = {"amount": "5", "reason": "promo"}
    responses = await asyncio.gather(*(_adjust(client, admin, user_id, body, key="k-1") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    ledger = (await client.get(f"/api/v1/admin/users/{user_id}/transactions", headers=bearer(admin))).json()
    assert len(ledger["items"]) == 1
    assert await ledger_violations(clean_db) == []


async def test_an_idempotency_key_reused_with_another_body_is_409(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    admin = await admin_token(client, settings)
    user_id = await _user_id(client, await client_token(client, "vic"))
    await _adjust(client, admin, user_id, {"amount": "5", "reason": "promo"}, key="k-2")
    other = await _adjust(client, admin, user_id, {"amount": "6", "reason": "promo"}, key="k-2")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("change", [{"role": "client"}, {"is_active": False}])
async def test_an_admin_cannot_demote_or_deactivate_themselves(
    client: AsyncTestClient[Litestar], settings: Settings, change: dict[str, Any]
) -> None:
    admin = await admin_token(client, settings)
    other = await admin_token(client, settings, username="second-root")
    refused = await client.patch(
        f"/api/v1/admin/users/{await _user_id(client, admin)}", json=change, headers=bearer(admin)
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "last_admin"
    assert (await client.get("/api/v1/admin/users", headers=bearer(admin))).status_code == 200
    assert (await client.get("/api/v1/admin/users", headers=bearer(other))).status_code == 200


@pytest.mark.parametrize("change", [{"role": "client"}, {"is_active": False}])
async def test_two_admins_removing_each_other_at_once_leave_one(
    served: httpx.AsyncClient, settings: Settings, clean_db: AsyncEngine, change: dict[str, Any]
) -> None:
    first = await admin_token(served, settings, username="first-root")
    second = await admin_token(served, settings, username="second-root")
    first_id, second_id = await _user_id(served, first), await _user_id(served, second)
    for _ in range(5):
        responses = await asyncio.gather(
            served.patch(f"/api/v1/admin/users/{second_id}", json=change, headers=bearer(first)),
            served.patch(f"/api/v1/admin/users/{first_id}", json=change, headers=bearer(second)),
        )
        # The loser is refused as the last admin, or, when it arrives after the winner, as no admin at all.
        assert sorted(r.status_code for r in responses) in ([200, 401], [200, 403], [200, 409])
        assert {r.json()["code"] for r in responses if r.status_code == 409} <= {"last_admin"}
        async with clean_db.connect() as connection:
            admins = await connection.scalar(text("SELECT count(*) FROM users WHERE role = 'admin' AND is_active"))
        assert admins == 1
        restore = {"role": "admin", "is_active": True}
        for token, other_id in ((first, second_id), (second, first_id)):
            await served.patch(f"/api/v1/admin/users/{other_id}", json=restore, headers=bearer(token))
        first = (await login(served, "first-root"))["access_token"]
        second = (await login(served, "second-root"))["access_token"]


async def test_a_client_can_be_deactivated_and_an_admin_demoted_while_another_admin_remains(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    admin = await admin_token(client, settings)
    other = await admin_token(client, settings, username="second-root")
    user_id = await _user_id(client, await client_token(client, "cleo"))
    for target, change in ((user_id, {"is_active": False}), (await _user_id(client, other), {"role": "client"})):
        patched = await client.patch(f"/api/v1/admin/users/{target}", json=change, headers=bearer(admin))
        assert patched.status_code == 200, patched.text


async def test_admin_searches_every_users_generations_by_user_model_status_and_window(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ada = await funded_client_token(client, settings, "ada")
    bob = await funded_client_token(client, settings, "bob")
    admin = await admin_token(client, settings)
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    runs = [
        (await client.post("/api/v1/generations", json={**body, "model": model}, headers=bearer(token))).json()
        for token, model in ((ada, "dr14"), (ada, "gemini-flash"), (bob, "dr14"))
    ]
    ada_id = await user_id_of(client, ada)

    async def found(**query: str) -> list[str]:
        response = await client.get("/api/v1/admin/generations", params=query, headers=bearer(admin))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await found() == [run["id"] for run in reversed(runs)]
    assert await found(user_id=ada_id) == [runs[1]["id"], runs[0]["id"]]
    assert await found(model="dr14", status="completed") == [runs[2]["id"], runs[0]["id"]]
    assert await found(status="failed") == []
    assert await found(to=runs[0]["created_at"]) == []
    first_page = await client.get("/api/v1/admin/generations?limit=2", headers=bearer(admin))
    cursor = first_page.json()["next_cursor"]
    assert await found(limit="2", cursor=cursor) == [runs[0]["id"]]
    detail = (await client.get(f"/api/v1/admin/generations/{runs[2]['id']}", headers=bearer(admin))).json()
    assert (detail["user_id"], detail["kind"], detail["usage"]["output_tokens"]) == (
        await user_id_of(client, bob),
        "generation",
        3,
    )


async def test_a_generation_search_window_must_hold_an_instant(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    admin = await admin_token(client, settings)
    window = {"from": "2026-02-01", "to": "2026-01-01"}
    response = await client.get("/api/v1/admin/generations", params=window, headers=bearer(admin))
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "from", "message": "`from` must be before `to`"}]
    bad_status = await client.get("/api/v1/admin/generations?status=lost", headers=bearer(admin))
    assert bad_status.status_code == 422
    assert bad_status.json()["code"] == "validation_error"
