"""The catalog over HTTP: clients see enabled models and their prices, admins manage every model."""

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.tables import models
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token

MODELS = "/api/v1/models"
ADMIN_MODELS = "/api/v1/admin/models"
DR14_PRICING = {"unit_tokens": 100, "input_credits": "20", "output_credits": "20"}

Client = AsyncTestClient[Litestar]


def _new_model(model_id: str = "house-small", **changes: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "provider": "simulator",
        "upstream_model": "house-small-v1",
        "description": "A small house model.",
        "pricing": {"unit_tokens": 1000, "input_credits": "0.5", "output_credits": "1.25"},
        "max_output_tokens": 512,
        **changes,
    }


async def _create(client: Client, admin: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(ADMIN_MODELS, json=body, headers=bearer(admin))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _field_errors(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}


async def test_clients_see_the_default_catalog_with_exact_prices(client: Client) -> None:
    token = await client_token(client, "ann")
    response = await client.get(MODELS, headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [(m["id"], m["provider"], m["pricing"], m["enabled"]) for m in body["items"]] == [
        ("dr14", "simulator", {"unit_tokens": 100, "input_credits": "20", "output_credits": "20"}, True),
        ("gemini-flash", "simulator", {"unit_tokens": 100, "input_credits": "1", "output_credits": "1"}, True),
    ]
    assert set(body["items"][0]) == {
        "id",
        "provider",
        "upstream_model",
        "description",
        "pricing",
        "max_output_tokens",
        "enabled",
        "deployments",
    }
    assert body["items"][0]["deployments"] == [
        {"provider": "simulator", "upstream_model": "dr14", "priority": 0, "weight": 1}
    ]


async def test_the_model_list_pages_with_a_cursor(client: Client) -> None:
    token = await client_token(client, "bob")
    first = (await client.get(MODELS, params={"limit": 1}, headers=bearer(token))).json()
    second = (
        await client.get(MODELS, params={"limit": 1, "cursor": first["next_cursor"]}, headers=bearer(token))
    ).json()
    assert [m["id"] for m in first["items"] + second["items"]] == ["dr14", "gemini-flash"]
    assert second["next_cursor"] is None
    forged = await client.get(MODELS, params={"cursor": "%%%"}, headers=bearer(token))
    assert forged.status_code == 422


async def test_disabled_models_are_hidden_from_clients_but_listed_for_admins(
    client: Client, settings: Settings
) -> None:
    admin = await admin_token(client, settings)
    await _create(client, admin, _new_model("hidden", enabled=False))
    token = await client_token(client, "cyd")
    client_ids = [m["id"] for m in (await client.get(MODELS, headers=bearer(token))).json()["items"]]
    openai_ids = [m["id"] for m in (await client.get("/v1/models", headers=bearer(token))).json()["data"]]
    admin_ids = [m["id"] for m in (await client.get(ADMIN_MODELS, headers=bearer(admin))).json()["items"]]
    assert client_ids == openai_ids == ["dr14", "gemini-flash"]
    assert admin_ids == ["dr14", "gemini-flash", "hidden"]
    assert (await client.get(f"{ADMIN_MODELS}/hidden", headers=bearer(admin))).json()["enabled"] is False


async def test_v1_models_has_the_openai_shape(client: Client) -> None:
    token = await client_token(client, "dee")
    response = await client.get("/v1/models", headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert body["data"] == [
        {"id": "dr14", "object": "model", "created": 0, "owned_by": "simulator"},
        {"id": "gemini-flash", "object": "model", "created": 0, "owned_by": "simulator"},
    ]


async def test_v1_models_lists_every_enabled_model_without_paging(client: Client, clean_db: AsyncEngine) -> None:
    bulk_ids = [f"bulk-{n:03d}" for n in range(450)]
    rows = [
        {
            "id": model_id,
            "provider": "simulator",
            "upstream_model": "bulk",
            "unit_tokens": 1,
            "input_credits": 0,
            "output_credits": 0,
            "max_output_tokens": 1,
        }
        for model_id in bulk_ids
    ]
    async with clean_db.begin() as connection:
        await connection.execute(models.insert(), rows)
    token = await client_token(client, "kim")
    data = (await client.get("/v1/models", headers=bearer(token))).json()["data"]
    assert [m["id"] for m in data] == [*bulk_ids, "dr14", "gemini-flash"]


async def test_v1_models_without_a_token_is_an_openai_style_401(client: Client) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 401
    assert response.json()["error"] | {"message": ""} == {
        "message": "",
        "type": "authentication_error",
        "code": "unauthorized",
        "param": None,
    }


async def test_admin_creates_a_model_once(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    created = await _create(client, admin, _new_model())
    assert created == {
        "id": "house-small",
        "provider": "simulator",
        "upstream_model": "house-small-v1",
        "description": "A small house model.",
        "pricing": {"unit_tokens": 1000, "input_credits": "0.5", "output_credits": "1.25"},
        "max_output_tokens": 512,
        "enabled": True,
        "deployments": [{"provider": "simulator", "upstream_model": "house-small-v1", "priority": 0, "weight": 1}],
    }
    assert (await client.get(f"{ADMIN_MODELS}/house-small", headers=bearer(admin))).json() == created
    duplicate = await client.post(ADMIN_MODELS, json=_new_model(upstream_model="other"), headers=bearer(admin))
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "model_exists"
    assert (await client.get(f"{ADMIN_MODELS}/house-small", headers=bearer(admin))).json() == created


async def test_a_created_model_is_visible_to_clients(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    await _create(client, admin, _new_model())
    token = await client_token(client, "eve")
    ids = [m["id"] for m in (await client.get(MODELS, headers=bearer(token))).json()["items"]]
    assert ids == ["dr14", "gemini-flash", "house-small"]


async def test_an_unknown_provider_is_refused(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    response = await client.post(ADMIN_MODELS, json=_new_model(provider="acme"), headers=bearer(admin))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert _field_errors(response.json()) == {"provider"}


@pytest.mark.parametrize("price", ["-1", "0.0000001", "1e3", "", " 1", "1.", "NaN", "10000.000001"])
async def test_a_bad_price_is_refused(client: Client, settings: Settings, price: str) -> None:
    admin = await admin_token(client, settings)
    pricing = {"unit_tokens": 100, "input_credits": price, "output_credits": "1"}
    response = await client.post(ADMIN_MODELS, json=_new_model(pricing=pricing), headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert _field_errors(response.json()) == {"pricing.input_credits"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pricing": {"unit_tokens": 0, "input_credits": "1", "output_credits": "1"}}, "pricing.unit_tokens"),
        (
            {"pricing": {"unit_tokens": 1_000_000_001, "input_credits": "1", "output_credits": "1"}},
            "pricing.unit_tokens",
        ),
        ({"pricing": {"unit_tokens": 1, "input_credits": 1, "output_credits": "1"}}, "pricing.input_credits"),
        ({"id": "-leading-dash"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"upstream_model": ""}, "upstream_model"),
        ({"description": "d" * 1001}, "description"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 1_000_001}, "max_output_tokens"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
async def test_out_of_bounds_fields_are_refused(
    client: Client, settings: Settings, changes: dict[str, Any], field: str
) -> None:
    admin = await admin_token(client, settings)
    response = await client.post(ADMIN_MODELS, json=_new_model(**changes), headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert _field_errors(response.json()) == {field}


async def test_an_unknown_field_in_a_new_model_is_refused(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    response = await client.post(ADMIN_MODELS, json=_new_model(base_url="http://evil"), headers=bearer(admin))
    assert response.status_code == 422


async def test_a_patched_price_is_what_clients_see(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    pricing = {"unit_tokens": 1000, "input_credits": "3.000001", "output_credits": "0"}
    response = await client.patch(f"{ADMIN_MODELS}/dr14", json={"pricing": pricing}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    assert response.json()["pricing"] == pricing
    assert response.json()["upstream_model"] == "dr14"
    token = await client_token(client, "fay")
    listed = (await client.get(MODELS, headers=bearer(token))).json()["items"]
    assert next(m for m in listed if m["id"] == "dr14")["pricing"] == pricing


async def test_cache_prices_are_optional_and_shown_only_when_set(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    cached = {"cached_input_credits": "0.05", "cache_write_credits": "0.625"}
    plain = {"unit_tokens": 1000, "input_credits": "0.5", "output_credits": "1.25"}
    created = await _create(client, admin, _new_model(pricing=plain | cached))
    assert created["pricing"] == plain | cached
    nulls = await _create(client, admin, _new_model("house-null", pricing=plain | dict.fromkeys(cached)))
    assert nulls["pricing"] == plain
    token = await client_token(client, "cache-reader")
    listed = {m["id"]: m["pricing"] for m in (await client.get(MODELS, headers=bearer(token))).json()["items"]}
    assert (listed["house-small"], listed["house-null"], listed["dr14"]) == (plain | cached, plain, DR14_PRICING)
    patched = await client.patch(f"{ADMIN_MODELS}/house-small", json={"pricing": plain}, headers=bearer(admin))
    assert patched.json()["pricing"] == plain, "a pricing is set as a whole"


@pytest.mark.parametrize("name", ["cached_input_credits", "cache_write_credits"])
@pytest.mark.parametrize("price", ["-1", "0.0000001", "10000.000001", 1])
async def test_a_bad_cache_price_is_refused(client: Client, settings: Settings, name: str, price: object) -> None:
    admin = await admin_token(client, settings)
    pricing = {"unit_tokens": 100, "input_credits": "1", "output_credits": "1", name: price}
    response = await client.post(ADMIN_MODELS, json=_new_model(pricing=pricing), headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert _field_errors(response.json()) == {f"pricing.{name}"}


async def test_patch_changes_only_what_is_given(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    before = (await client.get(f"{ADMIN_MODELS}/gemini-flash", headers=bearer(admin))).json()
    response = await client.patch(
        f"{ADMIN_MODELS}/gemini-flash", json={"enabled": False, "description": ""}, headers=bearer(admin)
    )
    assert response.json() == {**before, "enabled": False, "description": ""}
    token = await client_token(client, "gus")
    assert [m["id"] for m in (await client.get(MODELS, headers=bearer(token))).json()["items"]] == ["dr14"]


@pytest.mark.parametrize(
    "patch",
    [
        {"id": "renamed"},
        {"base_url": "http://evil"},
        {"provider": "acme"},
        {"pricing": {"unit_tokens": 100, "input_credits": "-1", "output_credits": "1"}},
        {"pricing": {"unit_tokens": 100, "input_credits": "1"}},
    ],
)
async def test_a_bad_patch_is_refused_and_changes_nothing(
    client: Client, settings: Settings, patch: dict[str, Any]
) -> None:
    admin = await admin_token(client, settings)
    before = (await client.get(f"{ADMIN_MODELS}/dr14", headers=bearer(admin))).json()
    response = await client.patch(f"{ADMIN_MODELS}/dr14", json=patch, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert (await client.get(f"{ADMIN_MODELS}/dr14", headers=bearer(admin))).json() == before


async def test_a_deleted_model_is_gone(client: Client, settings: Settings) -> None:
    admin = await admin_token(client, settings)
    deleted = await client.delete(f"{ADMIN_MODELS}/gemini-flash", headers=bearer(admin))
    assert deleted.status_code == 204
    assert deleted.content == b""
    for response in (
        await client.get(f"{ADMIN_MODELS}/gemini-flash", headers=bearer(admin)),
        await client.delete(f"{ADMIN_MODELS}/gemini-flash", headers=bearer(admin)),
        await client.patch(f"{ADMIN_MODELS}/gemini-flash", json={"enabled": True}, headers=bearer(admin)),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "model_not_found"
    token = await client_token(client, "hal")
    generation = await client.post(
        "/api/v1/generations",
        json={"model": "gemini-flash", "messages": [{"role": "user", "content": "hi"}]},
        headers=bearer(token),
    )
    assert generation.status_code == 404
    assert generation.json()["code"] == "model_not_found"


ADMIN_ROUTES = [
    ("GET", ADMIN_MODELS),
    ("POST", ADMIN_MODELS),
    ("GET", f"{ADMIN_MODELS}/dr14"),
    ("PATCH", f"{ADMIN_MODELS}/dr14"),
    ("DELETE", f"{ADMIN_MODELS}/dr14"),
]


async def test_admin_model_routes_refuse_a_client(client: Client) -> None:
    token = await client_token(client, "ivy")
    for method, path in ADMIN_ROUTES:
        response = await client.request(method, path, json=_new_model(), headers=bearer(token))
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "forbidden"
    assert len((await client.get(MODELS, headers=bearer(token))).json()["items"]) == 2


async def test_model_routes_need_a_token(client: Client) -> None:
    for method, path in [*ADMIN_ROUTES, ("GET", MODELS)]:
        response = await client.request(method, path, json=_new_model())
        assert response.status_code == 401, (method, path)


async def _input_schema(client: Client, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = (await client.get("/api-docs/openapi.json")).json()["components"]["schemas"]
    return schema[name]


@pytest.mark.parametrize(
    "price", ["0", "0.000001", "9999.999999", "10000", "10000.0", "10000.000001", "10001", "007", "-0", "+1"]
)
async def test_the_documented_price_pattern_is_what_validation_accepts(
    client: Client, settings: Settings, price: str
) -> None:
    pattern = (await _input_schema(client, "PricingInput"))["properties"]["input_credits"]["pattern"]
    admin = await admin_token(client, settings)
    pricing = {"unit_tokens": 1000, "input_credits": price, "output_credits": "1"}
    response = await client.post(ADMIN_MODELS, json=_new_model(pricing=pricing), headers=bearer(admin))
    assert (response.status_code == 201) is bool(re.search(pattern, price)), (price, response.text)


async def test_the_documented_providers_are_the_ones_accepted(client: Client) -> None:
    for name in ("NewModel", "ModelPatch", "DeploymentInput"):
        schema = (await _input_schema(client, name))["properties"]["provider"]
        provider = next((s for s in schema.get("oneOf", [schema]) if "pattern" in s), schema)
        for built_in in ("anthropic", "gemini", "local", "openai", "simulator"):
            assert re.search(provider["pattern"], built_in)
            assert f"`{built_in}`" in provider["description"]


async def test_an_integral_json_number_is_an_integer_and_a_fraction_is_not(client: Client, settings: Settings) -> None:
    """JSON Schema's `integer` is any number without a fraction: `100.0` is one, `100.5` is not."""
    admin = await admin_token(client, settings)
    pricing = {"unit_tokens": 100.0, "input_credits": "1", "output_credits": "2"}
    patched = await client.patch(f"{ADMIN_MODELS}/dr14", json={"pricing": pricing}, headers=bearer(admin))
    assert patched.status_code == 200, patched.text
    assert patched.json()["pricing"] == {"unit_tokens": 100, "input_credits": "1", "output_credits": "2"}
    fraction = await client.patch(
        f"{ADMIN_MODELS}/dr14", json={"pricing": pricing | {"unit_tokens": 100.5}}, headers=bearer(admin)
    )
    assert fraction.status_code == 422, fraction.text
    assert _field_errors(fraction.json()) == {"pricing.unit_tokens"}
    flag = await client.patch(f"{ADMIN_MODELS}/dr14", json={"enabled": 1.0}, headers=bearer(admin))
    assert flag.status_code == 422, flag.text


async def test_a_nul_in_a_stored_text_is_refused_by_its_documented_pattern(client: Client, settings: Settings) -> None:
    """PostgreSQL's text holds no NUL: the document says so, and the field is named before any row is written."""
    pattern = (await _input_schema(client, "NewModel"))["properties"]["description"]["pattern"]
    assert re.search(pattern, "two\nlines")
    assert not re.search(pattern, "a\x00b")
    admin = await admin_token(client, settings)
    response = await client.post(ADMIN_MODELS, json=_new_model(description="a\x00b"), headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert _field_errors(response.json()) == {"description"}


ROUTED = [
    {"provider": "openai", "upstream_model": "gpt-4o-mini", "priority": 1},
    {"provider": "simulator", "upstream_model": "sim-a", "priority": 0, "weight": 3},
    {"provider": "simulator", "upstream_model": "sim-b"},
]


async def test_a_model_on_several_deployments_shows_its_default_one_as_provider_and_upstream_model(
    client: Client, settings: Settings
) -> None:
    admin = await admin_token(client, settings)
    body = _new_model(deployments=ROUTED)
    del body["provider"], body["upstream_model"]
    created = await _create(client, admin, body)
    assert (created["provider"], created["upstream_model"]) == ("simulator", "sim-a")
    assert created["deployments"] == [
        {"provider": "openai", "upstream_model": "gpt-4o-mini", "priority": 1, "weight": 1},
        {"provider": "simulator", "upstream_model": "sim-a", "priority": 0, "weight": 3},
        {"provider": "simulator", "upstream_model": "sim-b", "priority": 0, "weight": 1},
    ]
    read = (await client.get(f"{ADMIN_MODELS}/house-small", headers=bearer(admin))).json()
    assert read == created
    patched = await client.patch(f"{ADMIN_MODELS}/house-small", json={"deployments": ROUTED[2:]}, headers=bearer(admin))
    assert patched.status_code == 200, patched.text
    assert (patched.json()["provider"], patched.json()["upstream_model"]) == ("simulator", "sim-b")
    assert len(patched.json()["deployments"]) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"deployments": []}, "deployments"),
        ({"deployments": [{"provider": "nowhere", "upstream_model": "m"}]}, "deployments[0].provider"),
        ({"deployments": [{"provider": "Open AI", "upstream_model": "m"}]}, "deployments[0].provider"),
        ({"deployments": [{"provider": "simulator", "upstream_model": "m", "weight": 0}]}, "deployments[0].weight"),
        (
            {"deployments": [{"provider": "simulator", "upstream_model": "m", "priority": -1}]},
            "deployments[0].priority",
        ),
        ({"deployments": [{"provider": "simulator", "upstream_model": "m"}] * 2}, "deployments[1]"),
        ({"deployments": [{"provider": "simulator", "upstream_model": "m", "url": "x"}]}, "deployments[0]"),
        ({"provider": "gemini", "deployments": [{"provider": "simulator", "upstream_model": "m"}]}, "provider"),
        ({"provider": "nowhere"}, "provider"),
    ],
)
async def test_bad_deployments_are_refused_naming_the_field(
    client: Client, settings: Settings, changes: dict[str, Any], field: str
) -> None:
    admin = await admin_token(client, settings)
    body = _new_model(**changes)
    if "deployments" in changes:
        del body["upstream_model"]
    response = await client.post(ADMIN_MODELS, json=body, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert _field_errors(response.json()) == {field}


async def test_a_model_with_several_deployments_is_patched_through_its_deployments(
    client: Client, settings: Settings
) -> None:
    admin = await admin_token(client, settings)
    await _create(client, admin, _new_model(deployments=ROUTED[1:], provider="simulator", upstream_model="sim-a"))
    response = await client.patch(f"{ADMIN_MODELS}/house-small", json={"provider": "openai"}, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert _field_errors(response.json()) == {"provider"}
