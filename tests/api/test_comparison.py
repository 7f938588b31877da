"""Text comparison end to end: TypeIDs, API keys, HMAC login, references, comparisons, subscriptions."""

import asyncio
import base64
import re
import secrets
import string
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
from dishka import Provider, Scope
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.security.aes_gcm_cipher import generate_master_key
from application.ports.clock import Clock
from domain.hmac_signature import SignedLogin
from entrypoints.cli import reencrypt_secrets
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token, fund, user_id_of
from tests.support.audit import ledger_violations
from tests.support.fakes.clock import FrozenClock
from tests.support.keys import signed_login
from tests.support.money import generation_violations
from tests.support.settings import replace_settings

TYPE = {
    "typeid": "essay",
    "scale": 10,
    "system": "You grade essays. Answer JSON {score, explanation}.",
    "user": "Reference:\n{reference}\n\nText:\n{text}\n\nScore from 0 to {scale}.",
    "model": "gemini-flash",
    "llm": "simulator",
}


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


class World:
    def __init__(self, client: AsyncTestClient[Litestar], admin: str, user: str, user_id: str) -> None:
        self.client, self.admin, self.user, self.user_id = client, admin, user, user_id

    async def key(self, **extra: Any) -> dict[str, Any]:
        body = {"user_id": self.user_id, "typeid": "essay", **extra}
        response = await self.client.post("/api/v1/keys", json=body, headers=bearer(self.admin))
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def login(self, key: dict[str, Any], username: str = "carla", **options: Any) -> Any:
        body = signed_login(key["api_key"], username, key["secret_key"], **options)
        return await self.client.post("/api/v1/auth", json=body)

    async def key_token(self, **extra: Any) -> tuple[dict[str, Any], str]:
        key = await self.key(**extra)
        response = await self.login(key)
        assert response.status_code == 200, response.text
        return key, str(response.json()["access_token"])


@pytest.fixture
async def world(client: AsyncTestClient[Litestar], settings: Settings) -> World:
    return await world_on(client, settings)


async def world_on(client: AsyncTestClient[Litestar], settings: Settings) -> World:
    admin = await admin_token(client, settings, username="types-admin")
    assert (await client.post("/api/v1/types", json=TYPE, headers=bearer(admin))).status_code == 201
    user = await client_token(client, "carla")
    user_id = await user_id_of(client, user)
    await fund(client, admin, user_id, "100")
    return World(client, admin, user, user_id)


BRIEF_TYPE = {k: v for k, v in TYPE.items() if k != "typeid"} | {"description": "Essays against a model answer"}


@pytest.mark.parametrize("typeid", [{"typeid": "t2"}, {}], ids=["given", "generated"])
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"model": "nope"}, "unknown_model"),
        ({"llm": "openai"}, "unknown_model"),
        ({"user": "only {text}"}, "validation_error"),
        ({"scale": 1}, "validation_error"),
        ({"scale": 1001}, "validation_error"),
    ],
)
async def test_typeids_are_validated(world: World, typeid: dict[str, str], change: dict[str, Any], code: str) -> None:
    response = await world.client.post("/api/v1/types", json=BRIEF_TYPE | typeid | change, headers=bearer(world.admin))
    assert response.status_code == 422
    assert response.json()["code"] == code


async def test_a_typeid_created_from_the_briefs_parameters_gets_a_generated_id_usable_for_keys_and_comparisons(
    world: World,
) -> None:
    created = await world.client.post("/api/v1/types", json=BRIEF_TYPE, headers=bearer(world.admin))
    assert created.status_code == 201, created.text
    typeid = created.json()["typeid"]
    assert re.fullmatch(r"tid_[a-z2-7]{16}", typeid)
    again = await world.client.post("/api/v1/types", json=BRIEF_TYPE, headers=bearer(world.admin))
    assert again.json()["typeid"] != typeid
    key, token = await world.key_token(typeid=typeid)
    assert key["typeid"] == typeid
    reference_id = (
        await world.client.post("/api/v1/reference", json={"text": b64("The cat sat.")}, headers=bearer(token))
    ).json()["reference_id"]
    compared = await world.client.post(
        f"/api/v1/compare/{reference_id}", json={"text": b64("A cat sat.")}, headers=bearer(token)
    )
    assert compared.status_code == 200, compared.text
    assert compared.json()["typeid"] == typeid


async def test_a_given_typeid_is_used_and_a_taken_one_is_409(world: World) -> None:
    given = await world.client.post(
        "/api/v1/types", json=BRIEF_TYPE | {"typeid": "grader"}, headers=bearer(world.admin)
    )
    assert given.status_code == 201
    assert given.json()["typeid"] == "grader"
    taken = await world.client.post("/api/v1/types", json=TYPE, headers=bearer(world.admin))
    assert taken.status_code == 409
    assert taken.json()["code"] == "typeid_taken"


async def test_typeid_crud_and_in_use(world: World) -> None:
    client, admin = world.client, world.admin
    replaced = await client.put(
        "/api/v1/types/essay",
        json={k: v for k, v in TYPE.items() if k != "typeid"} | {"scale": 5},
        headers=bearer(admin),
    )
    assert replaced.json()["scale"] == 5
    assert [t["typeid"] for t in (await client.get("/api/v1/types", headers=bearer(admin))).json()["items"]] == [
        "essay"
    ]
    await world.key()
    in_use = await client.delete("/api/v1/types/essay", headers=bearer(admin))
    assert in_use.status_code == 409
    assert in_use.json()["code"] == "typeid_in_use"
    assert (await client.get("/api/v1/types/nope", headers=bearer(admin))).status_code == 404
    assert (await client.get("/api/v1/types", headers=bearer(world.user))).status_code == 403


async def test_the_secret_is_shown_once_and_stored_encrypted(world: World, clean_db: AsyncEngine) -> None:
    key = await world.key(name="ci")
    secret = key["secret_key"]
    assert set(key) >= {"api_key", "secret_key", "user_id", "typeid", "name", "subscription", "credit_limit"}
    for token in (world.admin, world.user):
        listed = await world.client.get("/api/v1/keys", headers=bearer(token))
        assert key["api_key"] in listed.text
        assert secret not in listed.text
    async with clean_db.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM api_keys"))).one()
    stored = b"".join(str(value).encode() if not isinstance(value, bytes) else value for value in row)
    for form in (secret.encode(), secret.encode().hex().encode(), base64.b64encode(secret.encode())):
        assert form not in stored


async def test_hmac_login_gives_a_key_scoped_token_pair(world: World) -> None:
    key = await world.key()
    response = await world.login(key)
    assert response.status_code == 200
    body = response.json()
    assert body["api_key"] == key["api_key"]
    assert body["typeid"] == "essay"
    assert body["token_type"] == "Bearer"
    refreshed = await world.client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200


async def test_no_oracle_between_bad_signature_unknown_key_and_wrong_owner(world: World) -> None:
    key = await world.key()
    await client_token(world.client, "mallory")
    wrong_signature = signed_login(key["api_key"], "carla", "sk_wrong")
    unknown_key = signed_login("ak_doesnotexist0000000", "carla", key["secret_key"])
    wrong_owner = signed_login(key["api_key"], "mallory", key["secret_key"])
    answers = [
        await world.client.post("/api/v1/auth", json=body) for body in (wrong_signature, unknown_key, wrong_owner)
    ]
    assert {a.status_code for a in answers} == {401}
    bodies = [a.json() for a in answers]
    assert bodies[0]["code"] == "invalid_signature"
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(("skew", "accepted"), [(-295, True), (295, True), (-305, False), (305, False)])
async def test_the_timestamp_window(world: World, skew: int, accepted: bool) -> None:
    response = await world.login(await world.key(), skew=skew)
    assert (response.status_code == 200) is accepted
    if not accepted:
        assert response.json()["code"] == "stale_timestamp"


async def test_a_nonce_works_once(world: World) -> None:
    key = await world.key()
    body = signed_login(key["api_key"], "carla", key["secret_key"])
    assert (await world.client.post("/api/v1/auth", json=body)).status_code == 200
    replay = await world.client.post("/api/v1/auth", json=body)
    assert replay.status_code == 401
    assert replay.json()["code"] == "replayed_nonce"


async def test_a_nonce_with_a_trailing_newline_is_422_not_another_nonce(world: World) -> None:
    key = await world.key()
    nonce = secrets.token_urlsafe(24)
    with_newline = await world.login(key, nonce=f"{nonce}\n")
    assert with_newline.status_code == 422, with_newline.text
    assert with_newline.json()["code"] == "validation_error"
    assert (await world.login(key, nonce=nonce)).status_code == 200


async def test_bad_signatures_store_no_nonce(world: World, clean_db: AsyncEngine) -> None:
    key = await world.key()
    for _ in range(20):
        await world.client.post("/api/v1/auth", json=signed_login(key["api_key"], "carla", "sk_wrong"))
    async with clean_db.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM auth_nonces")) == 0


async def test_revoked_and_suspended_keys(world: World) -> None:
    revoked = await world.key()
    assert (
        await world.client.delete(f"/api/v1/keys/{revoked['api_key']}", headers=bearer(world.admin))
    ).status_code == 204
    assert (await world.login(revoked)).json()["code"] == "key_revoked"
    forged = signed_login(revoked["api_key"], "carla", "sk_wrong")
    assert (await world.client.post("/api/v1/auth", json=forged)).json()["code"] == "invalid_signature"
    suspended = await world.key()
    patched = await world.client.patch(
        f"/api/v1/keys/{suspended['api_key']}", json={"status": "suspended"}, headers=bearer(world.admin)
    )
    assert patched.json()["subscription"] == "suspended"
    refused = await world.login(suspended)
    assert refused.status_code == 403
    assert refused.json()["code"] == "subscription_inactive"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nonce", "short"),
        ("nonce", "x" * 65),
        ("username", "bad\nname"),
        ("username", "carla\n"),
        ("api_key", "ak bad"),
        ("api_key", "ak_something_long_enough\n"),
    ],
)
async def test_malformed_logins_are_422_before_any_lookup(world: World, field: str, value: str) -> None:
    body = signed_login("ak_something_long_enough", "carla", "sk") | {field: value}
    assert (await world.client.post("/api/v1/auth", json=body)).status_code == 422


async def test_references_and_comparisons_are_billed_to_the_key(world: World, clean_db: AsyncEngine) -> None:
    key, token = await world.key_token()
    reference = await world.client.post(
        "/api/v1/reference",
        json={"text": b64("The cat sat on the mat. {not a placeholder}"), "name": "cat"},
        headers=bearer(token),
    )
    assert reference.status_code == 201, reference.text
    assert reference.json()["length"] == len("The cat sat on the mat. {not a placeholder}")
    reference_id = reference.json()["reference_id"]
    compared = await world.client.post(
        f"/api/v1/compare/{reference_id}", json={"text": b64("A cat was sitting on a mat.")}, headers=bearer(token)
    )
    assert compared.status_code == 200, compared.text
    result = compared.json()
    assert 0 <= result["score"] <= 10
    assert result["scale"] == 10
    assert result["typeid"] == "essay"
    assert result["model"] == "gemini-flash"
    transactions = (await world.client.get("/api/v1/me/transactions", headers=bearer(world.user))).json()["items"]
    assert {t["kind"] for t in transactions[:2]} == {"comparison"}
    assert all(t["api_key"] == key["api_key"] for t in transactions[:2])
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ("not base64!", 422, "invalid_base64"),
        (b64(b"\xff\xfe bad utf-8"), 422, "invalid_utf8"),
        (b64(b"x" * (256 * 1024 + 1)), 413, "payload_too_large"),
        (b64(b"x" * (600 * 1024)), 413, "payload_too_large"),
    ],
)
async def test_bad_texts_are_refused(world: World, payload: str, status: int, code: str) -> None:
    _, token = await world.key_token()
    response = await world.client.post("/api/v1/reference", json={"text": payload}, headers=bearer(token))
    assert response.status_code == status
    assert response.json()["code"] == code


async def test_text_routes_need_a_key_token_and_an_active_subscription(world: World) -> None:
    response = await world.client.post("/api/v1/reference", json={"text": b64("x")}, headers=bearer(world.user))
    assert response.status_code == 403
    key, token = await world.key_token()
    await world.client.patch(
        f"/api/v1/keys/{key['api_key']}", json={"status": "suspended"}, headers=bearer(world.admin)
    )
    suspended = await world.client.post("/api/v1/reference", json={"text": b64("x")}, headers=bearer(token))
    assert suspended.status_code == 403
    assert suspended.json()["code"] == "subscription_inactive"


@pytest.mark.parametrize(
    "expires_at",
    ["2030-01-01T00:00:00", "2030-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
async def test_an_expiry_without_a_timezone_or_out_of_range_is_422_and_nothing_is_written(
    world: World, expires_at: str
) -> None:
    body = {"user_id": world.user_id, "typeid": "essay", "expires_at": expires_at}
    created = await world.client.post("/api/v1/keys", json=body, headers=bearer(world.admin))
    assert created.status_code == 422, created.text
    assert created.json()["code"] == "validation_error"
    assert created.json()["errors"][0]["field"] == "expires_at"
    assert (await world.client.get("/api/v1/keys", headers=bearer(world.admin))).json()["items"] == []
    key = await world.key()
    patched = await world.client.patch(
        f"/api/v1/keys/{key['api_key']}", json={"expires_at": expires_at}, headers=bearer(world.admin)
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["code"] == "validation_error"
    listed = (await world.client.get("/api/v1/keys", headers=bearer(world.admin))).json()["items"]
    assert [k["expires_at"] for k in listed] == [key["expires_at"]]


@pytest.mark.parametrize("bound", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_billing_bounds_beyond_utc_bound_nothing(world: World, bound: str) -> None:
    """An instant before year 1 or after 9999 once read in UTC is outside every record: it is clamped."""
    key = await world.key()
    for query in ({"from": bound}, {"to": bound}):
        for path in (f"/api/v1/billing/{key['api_key']}", "/api/v1/admin/usage"):
            response = await world.client.get(path, params=query, headers=bearer(world.admin))
            assert response.status_code == 200, (path, query, response.text)


@pytest.mark.parametrize(
    "bound",
    [
        "2026-11-01",
        "2028-02-29",
        "2000-02-29T23:59",
        "2026-11-01T10:00:00",
        "2026-11-01T10:00:00.5Z",
        "2026-11-01T10:00:00.123456+05:30",
        "2026-11-01T10:00:00-23:59",
        "2027-02-29",
        "1900-02-29",
        "2026-04-31",
        "0000-01-01",
        "20261101",
        "2026-11-01T24:00:00",
        "2026-11-01T10:00:00+24:00",
        "2026-11-01T10:00:00.1234567Z",
        "2026-11-01 10:00:00",
        "0000000000000000000000000000000000000000",
        "yesterday",
    ],
)
async def test_the_documented_bound_pattern_is_what_validation_accepts(world: World, bound: str) -> None:
    key = await world.key()
    document = (await world.client.get("/api-docs/openapi.json")).json()
    for path in (f"/api/v1/billing/{key['api_key']}", "/api/v1/admin/usage"):
        template = "/api/v1/billing/{api_key}" if "billing" in path else path
        for name in ("from", "to"):
            parameters = document["paths"][template]["get"]["parameters"]
            pattern = next(p for p in parameters if p["name"] == name)["schema"]["pattern"]
            response = await world.client.get(path, params={name: bound}, headers=bearer(world.admin))
            assert (response.status_code == 200) is bool(re.search(pattern, bound)), (path, name, response.text)
            if response.status_code != 200:
                assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text


@asynccontextmanager
async def _world_with(settings: Settings, **changes: Mapping[str, object]) -> AsyncIterator[World]:
    async with AsyncTestClient(app=create_app(replace_settings(settings, **changes))) as client:
        yield await world_on(client, settings)


async def test_references_count_against_the_key_and_user_request_limits(
    settings: Settings, clean_db: AsyncEngine
) -> None:
    async with _world_with(settings, rate_limits={"key_rpm": 3}) as world:
        _, token = await world.key_token()
        statuses = [
            (await world.client.post("/api/v1/reference", json={"text": b64("r")}, headers=bearer(token))).status_code
            for _ in range(4)
        ]
    assert statuses == [201, 201, 201, 429]


async def test_stored_reference_bytes_have_a_per_user_quota_that_concurrent_uploads_cannot_pass(
    settings: Settings, clean_db: AsyncEngine
) -> None:
    """10 concurrent uploads of 200 KiB against a 1 MiB quota: 5 fit. Deleted rows (the purge) free their bytes."""
    async with _world_with(settings, accounts={"reference_storage_bytes_per_user": 1024 * 1024}) as world:
        (_, token), (_, other_token) = await world.key_token(), await world.key_token()
        body = {"text": b64("é" * (100 * 1024))}  # 200 KiB of UTF-8: the quota counts bytes, not characters
        responses = await asyncio.gather(
            *(world.client.post("/api/v1/reference", json=body, headers=bearer(t)) for t in [token, other_token] * 5)
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] * 5 + [409] * 5, statuses
        refused = next(response.json() for response in responses if response.status_code == 409)
        assert refused["code"] == "reference_quota_exceeded"
        small = await world.client.post(
            "/api/v1/reference", json={"text": b64("x" * (50 * 1024))}, headers=bearer(token)
        )
        assert small.status_code == 409
        async with clean_db.begin() as connection:
            await connection.execute(
                text("DELETE FROM text_references WHERE ctid IN (SELECT ctid FROM text_references LIMIT 1)")
            )
        again = await world.client.post("/api/v1/reference", json=body, headers=bearer(token))
        assert again.status_code == 201, again.text


async def test_deleting_a_key_kills_its_tokens_at_once(world: World) -> None:
    key, token = await world.key_token()
    assert (await world.client.get(f"/api/v1/subscription/{key['api_key']}", headers=bearer(token))).status_code == 200
    await world.client.delete(f"/api/v1/keys/{key['api_key']}", headers=bearer(world.admin))
    assert (await world.client.get(f"/api/v1/subscription/{key['api_key']}", headers=bearer(token))).status_code == 401


async def test_another_users_reference_and_subscription_are_404(world: World) -> None:
    key, token = await world.key_token()
    reference_id = (
        await world.client.post("/api/v1/reference", json={"text": b64("mine")}, headers=bearer(token))
    ).json()["reference_id"]
    other = await client_token(world.client, "oscar")
    other_id = (await world.client.get("/api/v1/me", headers=bearer(other))).json()["id"]
    other_key = await world.client.post(
        "/api/v1/keys", json={"user_id": other_id, "typeid": "essay"}, headers=bearer(world.admin)
    )
    other_login = await world.client.post(
        "/api/v1/auth", json=signed_login(other_key.json()["api_key"], "oscar", other_key.json()["secret_key"])
    )
    other_token = other_login.json()["access_token"]
    stolen = await world.client.post(
        f"/api/v1/compare/{reference_id}", json={"text": b64("x")}, headers=bearer(other_token)
    )
    assert stolen.status_code == 404
    assert (await world.client.get(f"/api/v1/subscription/{key['api_key']}", headers=bearer(other))).status_code == 404
    assert (await world.client.get(f"/api/v1/subscription/{key['api_key']}", headers=bearer(world.admin))).json()[
        "active"
    ]


async def test_a_key_credit_limit_stops_spending(world: World) -> None:
    _, token = await world.key_token(credit_limit="0.000001")
    reference_id = (
        await world.client.post("/api/v1/reference", json={"text": b64("ref")}, headers=bearer(token))
    ).json()["reference_id"]
    first = await world.client.post(f"/api/v1/compare/{reference_id}", json={"text": b64("a")}, headers=bearer(token))
    assert first.status_code == 200
    second = await world.client.post(f"/api/v1/compare/{reference_id}", json={"text": b64("b")}, headers=bearer(token))
    assert second.status_code == 402
    assert second.json()["code"] == "key_credit_limit"


async def test_key_billing_and_activity(world: World) -> None:
    key, token = await world.key_token()
    reference_id = (
        await world.client.post("/api/v1/reference", json={"text": b64("ref")}, headers=bearer(token))
    ).json()["reference_id"]
    for text_ in ("a", "b"):
        compared = await world.client.post(
            f"/api/v1/compare/{reference_id}", json={"text": b64(text_)}, headers=bearer(token)
        )
        assert compared.status_code == 200
    billing = (await world.client.get(f"/api/v1/billing/{key['api_key']}", headers=bearer(world.user))).json()
    assert billing["requests"] == 2
    assert billing["typeid"] == "essay"
    assert billing["by_model"][0]["key"] == "gemini-flash"
    assert billing["credits_spent"] == billing["by_model"][0]["credits"]
    for count in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
        assert billing[count] == billing["by_model"][0][count], count
    assert billing["last_used_at"]
    old = await world.client.get(
        f"/api/v1/billing/{key['api_key']}?from=2000-01-01&to=2000-02-01", headers=bearer(world.user)
    )
    assert old.json()["requests"] == 0
    other = await client_token(world.client, "nosy")
    assert (await world.client.get(f"/api/v1/billing/{key['api_key']}", headers=bearer(other))).status_code == 404
    activity = (await world.client.get("/api/v1/admin/keys/activity", headers=bearer(world.admin))).json()["items"]
    assert activity[0]["api_key"] == key["api_key"]
    assert activity[0]["requests_24h"] == 2


async def test_typeid_and_key_administration_refuses_clients_and_key_tokens(world: World) -> None:
    key, key_token = await world.key_token()
    operations = [
        ("POST", "/api/v1/types", TYPE | {"typeid": "x"}),
        ("GET", "/api/v1/types", None),
        ("GET", "/api/v1/types/essay", None),
        ("PUT", "/api/v1/types/essay", {k: v for k, v in TYPE.items() if k != "typeid"}),
        ("DELETE", "/api/v1/types/essay", None),
        ("POST", "/api/v1/keys", {"user_id": world.user_id, "typeid": "essay"}),
        ("PATCH", f"/api/v1/keys/{key['api_key']}", {"status": "active"}),
        ("DELETE", f"/api/v1/keys/{key['api_key']}", None),
        ("GET", "/api/v1/admin/keys/activity", None),
    ]
    for token in (world.user, key_token):
        for method, path, body in operations:
            response = await world.client.request(method, path, json=body, headers=bearer(token))
            assert response.status_code == 403, (method, path)
            assert response.json()["code"] == "forbidden"


async def test_swapped_ciphertexts_fail_closed(world: World, clean_db: AsyncEngine) -> None:
    first, second = await world.key(), await world.key()
    async with clean_db.begin() as connection:
        await connection.execute(
            text(
                "UPDATE api_keys SET secret_ciphertext = CASE api_key WHEN :a THEN "
                "(SELECT secret_ciphertext FROM api_keys WHERE api_key = :b) ELSE "
                "(SELECT secret_ciphertext FROM api_keys WHERE api_key = :a) END WHERE api_key IN (:a, :b)"
            ),
            {"a": first["api_key"], "b": second["api_key"]},
        )
    for key in (first, second):
        response = await world.login(key)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_signature"


async def test_secrets_survive_a_master_key_rotation(world: World, settings: Settings) -> None:
    key = await world.key()
    new_master = generate_master_key()
    rotated = replace_settings(settings, security={"secret_keys": f"{new_master},{settings.security.secret_keys}"})
    report = await reencrypt_secrets(rotated)
    assert report.reencrypted == 1
    assert report.unreadable == []
    assert (await reencrypt_secrets(rotated)).reencrypted == 0
    only_new = create_app(replace_settings(settings, security={"secret_keys": new_master}))
    async with AsyncTestClient(app=only_new) as client:
        body = signed_login(key["api_key"], "carla", key["secret_key"])
        assert (await client.post("/api/v1/auth", json=body)).status_code == 200


async def test_the_secret_appears_in_no_other_response_log_or_document(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    key = await world.key()
    secret = key["secret_key"]
    await world.key_token()
    responses = [
        await world.client.get("/api/v1/keys", headers=bearer(world.admin)),
        await world.client.get(f"/api/v1/keys?user_id={world.user_id}", headers=bearer(world.admin)),
        await world.client.get(f"/api/v1/subscription/{key['api_key']}", headers=bearer(world.user)),
        await world.client.get(f"/api/v1/billing/{key['api_key']}", headers=bearer(world.user)),
        await world.client.get("/api/v1/admin/keys/activity", headers=bearer(world.admin)),
        await world.login(key),
        await world.client.get("/api-docs/openapi.json"),
    ]
    assert all(secret not in response.text for response in responses)
    captured = capfd.readouterr()
    assert secret not in captured.out
    assert secret not in captured.err


async def test_the_window_edges_and_replays_with_a_fake_clock(settings: Settings, clean_db: AsyncEngine) -> None:
    clock = FrozenClock(datetime.now(UTC))
    provider = Provider(scope=Scope.APP)
    provider.provide(lambda: clock, provides=Clock, override=True)
    async with AsyncTestClient(app=create_app(settings, provider)) as client:
        world = await world_on(client, settings)
        key = await world.key()
        now = int(clock.instant.timestamp())
        for skew, accepted in ((-300, True), (300, True), (-301, False), (301, False)):
            body = signed_login(key["api_key"], "carla", key["secret_key"]) | {"timestamp": now + skew}
            body["signature"] = SignedLogin(key["api_key"], "carla", now + skew, body["nonce"]).sign(key["secret_key"])
            response = await client.post("/api/v1/auth", json=body)
            assert (response.status_code == 200) is accepted, (skew, response.text)
        signed = signed_login(key["api_key"], "carla", key["secret_key"]) | {"timestamp": now}
        signed["signature"] = SignedLogin(key["api_key"], "carla", now, signed["nonce"]).sign(key["secret_key"])
        assert (await client.post("/api/v1/auth", json=signed)).status_code == 200
        clock.instant += timedelta(seconds=299)
        assert (await client.post("/api/v1/auth", json=signed)).json()["code"] == "replayed_nonce"
        clock.instant += timedelta(seconds=2)
        assert (await client.post("/api/v1/auth", json=signed)).json()["code"] == "stale_timestamp"


@pytest.fixture
async def clocked(settings: Settings, clean_db: AsyncEngine) -> AsyncIterator[tuple[Any, dict[str, Any], int]]:
    """An app on a frozen clock, with a key of user `carla`: the client, the key and the frozen time."""
    clock = FrozenClock(datetime.now(UTC))
    provider = Provider(scope=Scope.APP)
    provider.provide(lambda: clock, provides=Clock, override=True)
    async with AsyncTestClient(app=create_app(settings, provider)) as client:
        world = await world_on(client, settings)
        yield client, await world.key(), int(clock.instant.timestamp())


@hypothesis.settings(max_examples=40, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(skew=st.integers(-300, 300))
async def test_any_timestamp_in_the_window_is_accepted(clocked: tuple[Any, dict[str, Any], int], skew: int) -> None:
    client, key, now = clocked
    login = SignedLogin(key["api_key"], "carla", now + skew, secrets.token_urlsafe(24))
    body = {**_fields(login), "signature": login.sign(key["secret_key"])}
    assert (await client.post("/api/v1/auth", json=body)).status_code == 200


@hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(data=st.data())
async def test_a_one_character_mutation_of_any_field_is_an_invalid_signature(
    clocked: tuple[Any, dict[str, Any], int], data: st.DataObject
) -> None:
    client, key, now = clocked
    nonce = data.draw(st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True))
    login = SignedLogin(key["api_key"], "carla", now, nonce)
    body = {**_fields(login), "signature": login.sign(key["secret_key"])}
    field = data.draw(st.sampled_from(["api_key", "username", "timestamp", "nonce", "signature"]))
    body[field] = data.draw(_mutation_of(body[field], field))
    response = await client.post("/api/v1/auth", json=body)
    assert response.status_code == 401, (field, response.text)
    assert response.json()["code"] == "invalid_signature"


def _fields(login: SignedLogin) -> dict[str, Any]:
    return {"api_key": login.api_key, "username": login.username, "timestamp": login.timestamp, "nonce": login.nonce}


ALPHABETS = {
    "api_key": string.ascii_letters + string.digits + "_-",
    "username": string.ascii_letters + string.digits + "_.-",
    "nonce": string.ascii_letters + string.digits + "_-",
    "signature": "0123456789abcdef",
}


def _mutation_of(value: Any, field: str) -> st.SearchStrategy[Any]:
    if field == "timestamp":
        return st.integers(-300, 300).filter(bool).map(lambda delta: value + delta)
    text_value = str(value)
    return (
        st.tuples(st.integers(0, len(text_value) - 1), st.sampled_from(ALPHABETS[field]))
        .map(lambda change: text_value[: change[0]] + change[1] + text_value[change[0] + 1 :])
        .filter(lambda mutated: mutated != text_value and mutated.lower() != text_value.lower())
    )


async def test_keys_and_types_are_listed_a_page_at_a_time(world: World) -> None:
    client, admin = world.client, world.admin
    for typeid in ("t1", "t2", "t3"):
        assert (await client.post("/api/v1/types", json=TYPE | {"typeid": typeid}, headers=bearer(admin))).is_success
    created = [(await world.key(name=f"k{n}"))["api_key"] for n in range(5)]

    async def walk(path: str, token: str, field: str) -> list[list[str]]:
        pages, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            body = (await client.get(path, params=params, headers=bearer(token))).json()
            pages.append([item[field] for item in body["items"]])
            if (cursor := body["next_cursor"]) is None:
                return pages

    assert await walk("/api/v1/types", admin, "typeid") == [["essay", "t1"], ["t2", "t3"]]
    for token in (admin, world.user):
        pages = await walk("/api/v1/keys", token, "api_key")
        assert [len(page) for page in pages] == [2, 2, 1]
        assert sorted(key for page in pages for key in page) == sorted(created)
    forged = await client.get("/api/v1/keys", params={"cursor": "not-a-cursor"}, headers=bearer(admin))
    assert (forged.status_code, forged.json()["code"]) == (422, "validation_error")
    too_many = await client.get("/api/v1/types", params={"limit": 201}, headers=bearer(admin))
    assert too_many.status_code == 422
