"""Examples of use: every request body and every schema of the document carries an example that validates against
its own schema, and the request examples work as they stand (what Swagger UI's "Try it out" sends)."""

import base64
import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
from litestar import Litestar
from litestar.testing import AsyncTestClient

from domain.hmac_signature import SignedLogin
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, login, register
from tests.support.keys import signed_login

REF = "#/components/schemas/"


async def _document(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/api-docs/openapi.json")).json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema


def _examples(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [example["value"] for example in media["examples"].values()]
    return list(_resolve(document, media["schema"]).get("examples", []))


def _errors(document: dict[str, Any], schema: dict[str, Any], example: Any) -> list[str]:
    validator = jsonschema_rs.Draft202012Validator(
        {**schema, "components": document["components"]}, validate_formats=True
    )
    return [error.message for error in validator.iter_errors(example)]


def _request_bodies(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                yield method, path, media_type, media


def _responses(document: dict[str, Any]) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    yield method, path, status, media_type, media


def _request_example(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    media = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    example: dict[str, Any] = _examples(document, media)[0]
    return example


async def test_every_request_body_has_an_example_that_fits_its_schema(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    bodies = list(_request_bodies(document))
    assert len(bodies) >= 17
    for method, path, media_type, media in bodies:
        examples = _examples(document, media)
        assert examples, (method, path, media_type)
        for example in examples:
            assert _errors(document, media["schema"], example) == [], (method, path, example)


async def test_every_schema_has_an_example_that_fits_it(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        if "enum" in schema:
            continue  # the list of its values is the example
        assert schema.get("examples"), name
        for example in schema["examples"]:
            assert _errors(document, {"$ref": REF + name}, example) == [], (name, example)
    assert {"Problem", "OpenAIError"} <= set(schemas)


async def test_every_response_shows_an_example_that_fits_its_schema(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    responses = list(_responses(document))
    assert {media_type for *_, media_type, _ in responses} >= {"application/json", "application/problem+json"}
    assert "text/event-stream" in {media_type for *_, media_type, _ in responses}
    for method, path, status, media_type, media in responses:
        examples = _examples(document, media)
        assert examples, (method, path, status, media_type)
        for example in examples:
            assert _errors(document, media["schema"], example) == [], (method, path, status, example)


async def test_texts_in_the_examples_are_base64_of_readable_sentences(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    for path in ("/api/v1/reference", "/api/v1/compare/{reference_id}"):
        text = base64.b64decode(_request_example(document, "post", path)["text"], validate=True).decode()
        assert text.endswith(".")
        assert len(text.split()) >= 5


async def test_the_request_examples_work_as_they_stand(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    document = await _document(client)

    def example(method: str, path: str) -> dict[str, Any]:
        return _request_example(document, method, path)

    admin = bearer(await admin_token(client, settings))
    user = await register(client, **example("post", "/api/v1/auth/register"))
    tokens = await login(client, **example("post", "/api/v1/auth/login"))
    funded = await client.post(
        f"/api/v1/admin/users/{user['id']}/balance",
        json=example("post", "/api/v1/admin/users/{user_id}/balance"),
        headers=admin,
    )
    assert funded.status_code == 200, funded.text
    created_model = await client.post(
        "/api/v1/admin/models", json=example("post", "/api/v1/admin/models"), headers=admin
    )
    assert created_model.status_code == 201, created_model.text
    generations = ("/api/v1/generations", "/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens")
    for method, path in (("post", path) for path in generations):
        answered = await client.request(
            method, path, json=example(method, path), headers=bearer(tokens["access_token"])
        )
        assert answered.status_code == 200, (path, answered.text)
    created_type = await client.post("/api/v1/types", json=example("post", "/api/v1/types"), headers=admin)
    assert created_type.status_code == 201, created_type.text
    typeid = created_type.json()["typeid"]
    key_body = example("post", "/api/v1/keys") | {"user_id": user["id"], "typeid": typeid}
    key = await client.post("/api/v1/keys", json=key_body, headers=admin)
    assert key.status_code == 201, key.text
    assert key.json()["expires_at"].startswith("2030-01-01T00:00:00")
    signed = signed_login(key.json()["api_key"], user["username"], key.json()["secret_key"])
    key_token = bearer((await client.post("/api/v1/auth", json=signed)).json()["access_token"])
    reference = await client.post("/api/v1/reference", json=example("post", "/api/v1/reference"), headers=key_token)
    assert reference.status_code == 201, reference.text
    compared = await client.post(
        f"/api/v1/compare/{reference.json()['reference_id']}",
        json=example("post", "/api/v1/compare/{reference_id}"),
        headers=key_token,
    )
    assert compared.status_code == 200, compared.text


async def test_the_hmac_login_example_is_signed_as_its_description_says(client: AsyncTestClient[Litestar]) -> None:
    document = await _document(client)
    body = _request_example(document, "post", "/api/v1/auth")
    description = document["components"]["schemas"]["KeyLoginRequest"]["properties"]["signature"]["description"]
    secret = re.search(r"`(sk_[A-Za-z0-9_-]+)`", description)
    assert secret is not None, description
    login = SignedLogin(body["api_key"], body["username"], body["timestamp"], body["nonce"])
    assert body["signature"] == login.sign(secret.group(1))
