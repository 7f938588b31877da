import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import SettlementDeferred, StorageUnavailable
from entrypoints.http.app import create_app
from entrypoints.http.problems import domain_problem
from entrypoints.settings import Settings
from tests.support.api import PASSWORD, bearer, client_token
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("error", [StorageUnavailable(), SettlementDeferred()], ids=["storage", "settlement"])
def test_every_503_of_the_database_says_when_to_retry(error: StorageUnavailable | SettlementDeferred) -> None:
    """A plain generation whose charge could not be written during an outage is 503 like the rest (tests/deploy)."""
    problem = domain_problem(error)
    assert problem.status_code == 503
    assert problem.headers == {"Retry-After": "1"}


async def test_liveness_answers_without_the_database(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_is_200_when_postgres_answers(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "database": True}


async def test_readiness_is_503_when_postgres_is_down(settings: Settings) -> None:
    unreachable = replace_settings(settings, database={"url": "postgresql://postgres@127.0.0.1:9/nowhere"})
    async with AsyncTestClient(app=create_app(unreachable)) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "database": False}


async def test_unknown_route_is_a_problem_with_a_code(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()


async def test_wrong_method_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    response = await client.delete("/health/live")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_every_response_carries_a_request_id(client: AsyncTestClient[Litestar]) -> None:
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) >= 16
    missing = await client.get("/nowhere")
    assert missing.headers["x-request-id"]


async def test_a_well_formed_incoming_request_id_is_kept(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "abc-123_def.456"})
    assert response.headers["x-request-id"] == "abc-123_def.456"


async def test_a_hostile_incoming_request_id_is_replaced(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "x\tinjected"})
    assert response.headers["x-request-id"] != "x\tinjected"


async def test_openapi_document_is_served_with_a_bearer_scheme(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api-docs/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert "/health/ready" in document["paths"]


async def test_swagger_and_redoc_pages_are_served(client: AsyncTestClient[Litestar]) -> None:
    swagger = await client.get("/api-docs")
    redoc = await client.get("/api-docs/redoc")
    assert swagger.status_code == 200
    assert "swagger-ui" in swagger.text.lower()
    assert redoc.status_code == 200
    assert "redoc" in redoc.text.lower()
    assert (await client.get("/schema")).status_code == 404


METRICS_TOKEN = "metrics-token-for-the-suite-0123456789"


async def test_metrics_are_prometheus_text_for_the_bearer_of_the_metrics_token(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(replace_settings(settings, metrics={"token": METRICS_TOKEN}))) as client:
        await client.get("/health/live")
        response = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "creditgate_requests_total" in response.text


async def test_metrics_are_refused_to_an_untrusted_address(client: AsyncTestClient[Litestar]) -> None:
    """The in-process client's address is `testclient`, in no network: no token is configured, so 403."""
    response = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "metrics_forbidden"
    assert "creditgate_" not in response.text


async def test_metrics_want_the_token_when_one_is_configured(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(replace_settings(settings, metrics={"token": METRICS_TOKEN}))) as client:
        for headers in ({}, bearer("wrong"), bearer(METRICS_TOKEN + "x"), {"Authorization": METRICS_TOKEN}):
            response = await client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["code"] == "metrics_unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


async def test_metrics_are_served_to_loopback_only_by_default(settings: Settings) -> None:
    async with serve_on_loopback(create_app(settings)) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.get("/metrics")).status_code == 200
    elsewhere = replace_settings(settings, metrics={"allowed_networks": "10.0.0.0/8"})
    async with serve_on_loopback(create_app(elsewhere)) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        refused = await http.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "metrics_forbidden"


async def test_the_app_serves_over_a_real_socket(served: httpx.AsyncClient) -> None:
    response = await served.get("/health/ready")
    assert response.status_code == 200


async def test_a_nul_character_in_client_text_is_a_422_or_an_unknown_model_never_a_500(
    client: AsyncTestClient[Litestar],
) -> None:
    """PostgreSQL text cannot hold U+0000; whichever field carries one, the client gets a problem, not a 500."""
    registered = await client.post(
        "/api/v1/auth/register", json={"username": "nul-user", "password": PASSWORD, "email": "a\x00@b.example"}
    )
    assert (registered.status_code, registered.json()["code"]) == (422, "validation_error")
    assert [error["field"] for error in registered.json()["errors"]] == ["email"]
    token = await client_token(client, "nul-user")
    for path in ("/api/v1/generations", "/v1/chat/completions"):
        body = {"model": "dr14\x00", "messages": [{"role": "user", "content": "hi"}]}
        assert (await client.post(path, json=body, headers=bearer(token))).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stream": 0}, "stream"),
        ({"stream": "false"}, "stream"),
        ({"max_tokens": "3"}, "max_tokens"),
        ({"temperature": "0.5"}, "temperature"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
    ],
)
async def test_a_body_value_of_another_json_type_is_refused_not_coerced(
    client: AsyncTestClient[Litestar], change: dict[str, object], field: str
) -> None:
    token = await client_token(client, "typed")
    body = {"model": "dr14", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3} | change
    response = await client.post("/api/v1/generations", json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == field


async def test_a_database_out_of_connections_is_a_503_never_a_500(
    settings: Settings, client: AsyncTestClient[Litestar], clean_db: AsyncEngine
) -> None:
    """PostgreSQL refusing a connection (53300, too many connections) is unavailability, with a Retry-After."""
    token = await client_token(client, "no-room")
    async with clean_db.begin() as connection:
        await connection.execute(text("DROP ROLE IF EXISTS creditgate_no_room"))
        await connection.execute(text("CREATE ROLE creditgate_no_room LOGIN CONNECTION LIMIT 0"))
    no_room = make_url(settings.database.require_url()).set(username="creditgate_no_room", password=None)
    app = create_app(replace_settings(settings, database={"url": no_room.render_as_string(hide_password=False)}))
    generation = {"model": "dr14", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with AsyncTestClient(app=app) as refused:
            responses = [
                await refused.post("/api/v1/auth/login", json={"username": "no-room", "password": PASSWORD}),
                await refused.post("/api/v1/generations", json=generation, headers=bearer(token)),
            ]
    finally:
        async with clean_db.begin() as connection:
            await connection.execute(text("DROP ROLE creditgate_no_room"))
    for response in responses:
        assert response.status_code == 503, response.text
        assert (response.json()["code"], response.headers["retry-after"]) == ("service_unavailable", "1")
