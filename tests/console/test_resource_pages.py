"""The console's models, TypeIDs, API keys, generations and usage pages, through the app's own ASGI interface: the same
use cases as the admin API, every refusal beside its field with the API's code, a key's secret shown once."""

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from entrypoints.settings import Settings
from tests.support.api import PASSWORD, admin_token, bearer, funded_client_token, user_id_of
from tests.support.keys import signed_login

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
SECRET = re.compile(r'id="secret-key"[^>]*value="(sk_[^"]+)"')
TYPEID = {
    "scale": "10",
    "system": "Grade the text. Answer JSON {score, explanation}.",
    "user": "Reference:\n{reference}\n\nText:\n{text}\n\nScore 0 to {scale}.",
    "model": "gemini-flash",
}


class Console:
    """A signed-in admin's browser: each post carries the CSRF token of the page it was taken from."""

    def __init__(self, client: AsyncTestClient[Litestar], admin_token: str) -> None:
        self.client = client
        self.admin = bearer(admin_token)
        self._token = ""

    async def sign_in(self, username: str = "root") -> None:
        await self.get("/admin/login")
        signed = await self.post("/admin/login", username=username, password=PASSWORD, next="/admin/")
        assert signed.status_code == 303, signed.text

    async def get(self, path: str, **params: str) -> Any:
        page = await self.client.get(path, params=params or None, follow_redirects=False)
        if found := CSRF.search(page.text):
            self._token = found.group(1)
        return page

    async def post(self, path: str, **form: str) -> Any:
        return await self.client.post(path, data={"_csrf_token": self._token, **form}, follow_redirects=False)


def field_error(page: str, field: str) -> str:
    """The text of the error shown beside `field`."""
    found = re.search(rf'<p class="field-error" id="{re.escape(field)}-error" role="alert">(.*?)</p>', page, re.S)
    assert found, f"no error beside {field}"
    return found.group(1)


@pytest.fixture
async def console(client: AsyncTestClient[Litestar], settings: Settings) -> Console:
    signed_in = Console(client, await admin_token(client, settings))
    await signed_in.sign_in()
    return signed_in


PRICING = {"unit_tokens": 1000, "input_credits": "0.15", "output_credits": "0.6"}
MODEL = {
    "id": "house-model",
    "provider": "simulator",
    "upstream_model": "house",
    "max_output_tokens": "512",
    "pricing.unit_tokens": "1000",
    "pricing.input_credits": "0.15",
    "pricing.output_credits": "0.6",
}


async def test_a_model_is_added_priced_with_cache_prices_disabled_and_deleted(console: Console) -> None:
    await console.get("/admin/models")
    refused = await console.post("/admin/models", **(MODEL | {"pricing.input_credits": "0.1234567"}))
    assert refused.status_code == 422
    assert "validation_error" in field_error(refused.text, "pricing.input_credits")
    added = await console.post("/admin/models", **MODEL)
    assert (added.status_code, added.headers["location"]) == (303, "/admin/models/house-model")
    again = await console.post("/admin/models", **MODEL)
    assert "model_exists" in field_error(again.text, "id")
    await console.get("/admin/models/house-model")
    priced = await console.post(
        "/admin/models/house-model",
        **(MODEL | {"pricing.cached_input_credits": "0.075", "description": "", "enabled": "false"}),
    )
    assert priced.status_code == 200, priced.text
    assert 'value="0.075"' in priced.text
    listed = (await console.client.get("/api/v1/admin/models", headers=console.admin)).json()["items"]
    model = next(item for item in listed if item["id"] == "house-model")
    assert model["pricing"]["cached_input_credits"] == "0.075"
    assert "cache_write_credits" not in model["pricing"]
    assert model["enabled"] is False
    await console.get("/admin/models")
    enabled = await console.post("/admin/models/house-model/enabled", enabled="true")
    assert "house-model is enabled" in enabled.text
    deleted = await console.post("/admin/models/house-model/delete")
    assert deleted.headers["location"] == "/admin/models?deleted=house-model"
    listed = (await console.client.get("/api/v1/admin/models", headers=console.admin)).json()["items"]
    assert "house-model" not in {item["id"] for item in listed}


async def test_a_model_on_several_deployments_lists_them_and_keeps_them_when_repriced(console: Console) -> None:
    deployments = [
        {"provider": "simulator", "upstream_model": "house", "priority": 0},
        {"provider": "openai", "upstream_model": "gpt-4o-mini", "priority": 1},
    ]
    body = {"id": "house-model", "deployments": deployments, "max_output_tokens": 512, "pricing": PRICING}
    created = await console.client.post("/api/v1/admin/models", json=body, headers=console.admin)
    assert created.status_code == 201, created.text
    page = await console.get("/admin/models/house-model")
    assert "<h2>Deployments</h2>" in page.text
    assert "<code>gpt-4o-mini</code>" in page.text
    priced = await console.post("/admin/models/house-model", **(MODEL | {"pricing.input_credits": "0.2"}))
    assert priced.status_code == 200, priced.text
    model = (await console.client.get("/api/v1/admin/models/house-model", headers=console.admin)).json()
    assert model["pricing"]["input_credits"] == "0.2"
    assert [d["upstream_model"] for d in model["deployments"]] == ["house", "gpt-4o-mini"]


async def test_a_typeid_gets_a_generated_id_and_cannot_be_deleted_while_a_key_uses_it(
    console: Console, client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await console.get("/admin/typeids/new")
    mismatch = await console.post("/admin/typeids", **(TYPEID | {"llm": "openai"}))
    assert "unknown_model" in field_error(mismatch.text, "model")
    no_placeholder = await console.post("/admin/typeids", **(TYPEID | {"user": "no placeholders"}))
    assert no_placeholder.status_code == 422
    created = await console.post("/admin/typeids", **TYPEID)
    location = created.headers["location"]
    typeid = re.fullmatch(r"/admin/typeids/(tid_[a-z2-7]{16})\?created=1", location)
    assert typeid, location
    page = await console.get(location)
    assert "TypeID created" in page.text
    replaced = await console.post(f"/admin/typeids/{typeid.group(1)}", **(TYPEID | {"scale": "5", "name": "five"}))
    assert replaced.status_code == 200
    owner = await user_id_of(client, await funded_client_token(client, settings, "carla"))
    await console.get("/admin/keys")
    await console.post("/admin/keys", user_id=owner, typeid=typeid.group(1))
    await console.get(f"/admin/typeids/{typeid.group(1)}")
    in_use = await console.post(f"/admin/typeids/{typeid.group(1)}/delete")
    assert in_use.status_code == 422
    assert "typeid_in_use" in field_error(in_use.text, "delete")


async def test_a_key_secret_is_shown_once_and_the_key_is_suspended_and_revoked(
    console: Console, client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    owner = await user_id_of(client, await funded_client_token(client, settings, "carla"))
    await console.get("/admin/typeids/new")
    typeid = (await console.post("/admin/typeids", **(TYPEID | {"typeid": "essay"}))).headers["location"]
    assert typeid.startswith("/admin/typeids/essay")
    await console.get("/admin/keys")
    bad_limit = await console.post("/admin/keys", user_id=owner, typeid="essay", credit_limit="0")
    assert "credit_limit" in bad_limit.text
    assert field_error(bad_limit.text, "credit_limit")
    issued = await console.post(
        "/admin/keys", user_id=owner, typeid="essay", name="grader", expires_at="2031-01-01T00:00"
    )
    location = issued.headers["location"]
    assert issued.status_code == 303
    assert "sk_" not in location
    shown = await console.get(location)
    assert shown.headers["cache-control"] == "no-store"
    secret = SECRET.search(shown.text)
    assert secret, shown.text
    api_key = location.rsplit("/", 1)[1]
    assert secret.group(1) not in (await console.get(location)).text
    assert secret.group(1) not in (await console.get("/admin/keys")).text
    login = await client.post("/api/v1/auth", json=signed_login(api_key, "carla", secret.group(1)))
    assert login.status_code == 200, login.text
    suspended = await console.post(location, status="suspended")
    assert "subscription is suspended" in suspended.text
    refused = await client.post("/api/v1/auth", json=signed_login(api_key, "carla", secret.group(1)))
    assert refused.json()["code"] == "subscription_inactive"
    await console.post(location, status="active")
    limited = await console.post(location, credit_limit="12.5")
    assert "12.5" in limited.text
    await console.post(f"{location}/revoke")
    revoked = await client.post("/api/v1/auth", json=signed_login(api_key, "carla", secret.group(1)))
    assert (revoked.status_code, revoked.json()["code"]) == (401, "key_revoked")
    bad_filter = await console.get("/admin/keys", user_id="carla")
    assert "validation_error" in field_error(bad_filter.text, "filter.user_id")
    assert api_key in (await console.get("/admin/keys", user_id=owner)).text
    final = await console.post(location, credit_limit="20")
    assert "key_revoked" in field_error(final.text, "credit_limit")


async def test_generations_are_filtered_and_a_bad_filter_is_shown_beside_its_input(
    console: Console, client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ada = await funded_client_token(client, settings, "ada")
    body = {"model": "dr14", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    run = (await client.post("/api/v1/generations", json=body, headers=bearer(ada))).json()
    listed = await console.get("/admin/generations", user_id=await user_id_of(client, ada), status="completed")
    assert run["id"] in listed.text
    assert run["id"] not in (await console.get("/admin/generations", status="failed")).text
    bad = await console.get("/admin/generations", user_id="not-a-uuid")
    assert bad.status_code == 422
    assert "validation_error" in field_error(bad.text, "user_id")
    backwards = await console.get("/admin/generations", **{"from": "2026-02-02", "to": "2026-02-01"})
    assert "`from` must be before `to`" in field_error(backwards.text, "from")
    detail = await console.get(f"/admin/generations/{run['id']}")
    assert "of which reasoning" in detail.text
    assert run["cost"] in detail.text


async def test_pages_stay_out_of_the_api_document(client: AsyncTestClient[Litestar]) -> None:
    paths = (await client.get("/api-docs/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/admin")]


async def test_usage_is_grouped_per_user_model_and_key_and_a_bad_window_is_shown_beside_its_input(
    console: Console, client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    ada = await funded_client_token(client, settings, "ada")
    body = {"model": "dr14", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    run = (await client.post("/api/v1/generations", json=body, headers=bearer(ada))).json()
    spent = f'aria-label="{{}}: {run["cost"]} credits"'
    per_user = await console.get("/admin/usage")
    ada_id = await user_id_of(client, ada)
    assert f'href="/admin/users/{ada_id}"' in per_user.text
    assert spent.format(ada_id) in per_user.text
    per_model = await console.get("/admin/usage", group_by="model", **{"from": "2020-01-01"})
    assert 'href="/admin/models/dr14"' in per_model.text
    assert spent.format("dr14") in per_model.text
    per_key = await console.get("/admin/usage", group_by="key")
    assert spent.format("no key") in per_key.text  # run with a bearer token, not an API key
    past = await console.get("/admin/usage", group_by="model", to="2020-01-01")
    assert "Nothing was spent in this window." in past.text
    backwards = await console.get("/admin/usage", **{"from": "2026-02-02", "to": "2026-02-01"})
    assert backwards.status_code == 422
    assert "validation_error" in field_error(backwards.text, "from")
    assert "`from` must be before `to`" in field_error(backwards.text, "from")
    not_a_day = await console.get("/admin/usage", to="2026-02-30")
    assert "validation_error" in field_error(not_a_day.text, "to")
    unknown = await console.get("/admin/usage", group_by="team")
    assert "validation_error" in field_error(unknown.text, "group_by")
