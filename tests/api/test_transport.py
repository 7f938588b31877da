"""Transport policy in process (SPEC §9, RELIABILITY T2, T3, Z8): HTTPS only in production, HSTS only over HTTPS,
`nosniff` everywhere, CORS only for configured origins and never with credentials, no internals in any body."""

import httpx
import pytest
from dishka import Provider, Scope
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports.security import IdentityProvider
from domain.user import Principal
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.servers import serve_on_loopback
from tests.support.settings import replace_settings

HTTPS = "https://testserver.local"
HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def production(settings: Settings, clean_db: AsyncEngine) -> Litestar:
    return create_app(replace_settings(settings, runtime={"environment": "production"}))


async def test_development_serves_plain_http_without_hsts(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/health/live", "/api/v1/models", "/no/such/route"):
        response = await client.get(path)
        assert response.status_code in {200, 401, 404}
        assert "strict-transport-security" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_development_over_https_sends_hsts(app: Litestar) -> None:
    async with AsyncTestClient(app=app, base_url=HTTPS) as client:
        response = await client.get("/health/live")
    assert response.headers["strict-transport-security"] == HSTS


async def test_production_refuses_plain_http_with_a_problem(production: Litestar) -> None:
    async with AsyncTestClient(app=production) as client:
        for method, path in (("GET", "/api/v1/me"), ("POST", "/api/v1/auth/login"), ("OPTIONS", "/api/v1/models")):
            response = await client.request(method, path, headers={"X-Forwarded-Proto": "https"})
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json() == {
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
                "detail": "This API is served over HTTPS only.",
                "code": "https_required",
            }
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-request-id"]
            assert "strict-transport-security" not in response.headers


async def test_production_lets_probes_in_over_plain_http(production: Litestar) -> None:
    async with AsyncTestClient(app=production) as client:
        for path in ("/health/live", "/health/ready"):
            response = await client.get(path)
            assert response.status_code == 200
            assert "strict-transport-security" not in response.headers


async def test_production_serves_https_with_hsts_on_every_response(production: Litestar) -> None:
    async with AsyncTestClient(app=production, base_url=HTTPS) as client:
        responses = [await client.get(path) for path in ("/health/live", "/api/v1/models", "/nowhere", "/api-docs")]
    assert [r.status_code for r in responses] == [200, 401, 404, 200]
    assert all(r.headers["strict-transport-security"] == HSTS for r in responses)
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in responses)


async def test_no_cors_headers_by_default(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/live", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("configured", "origin", "allowed"),
    [
        ("https://app.example", "https://app.example", "https://app.example"),
        ("https://app.example", "https://evil.example", None),
        ("*", "https://anyone.example", "*"),
    ],
)
async def test_cors_allows_configured_origins_and_never_credentials(
    settings: Settings, clean_db: AsyncEngine, configured: str, origin: str, allowed: str | None
) -> None:
    app = create_app(replace_settings(settings, http={"cors_allowed_origins": configured}))
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with AsyncTestClient(app=app) as client:
        options = await client.options("/api/v1/generations", headers=preflight)
        simple = await client.get("/health/live", headers={"Origin": origin})
    assert options.headers.get("access-control-allow-origin") == allowed
    assert simple.headers.get("access-control-allow-origin") == allowed
    assert "access-control-allow-credentials" not in options.headers
    assert "access-control-allow-credentials" not in simple.headers


class Broken(IdentityProvider):
    async def current(self) -> Principal:
        raise LookupError("internal-canary: table users_v2 is missing")


async def test_an_internal_error_reveals_nothing(settings: Settings, clean_db: AsyncEngine) -> None:
    """Z8: the unexpected error is logged; its response is a generic problem."""
    broken = Provider(scope=Scope.REQUEST)
    broken.provide(Broken, provides=IdentityProvider, override=True)
    async with AsyncTestClient(app=create_app(settings, broken)) as client:
        response = await client.get("/api/v1/me", headers={"Authorization": "Bearer x"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    for leak in ("Traceback", "LookupError", "Broken", "internal-canary", "users_v2", 'File "'):
        assert leak not in response.text


async def test_production_lets_the_metrics_networks_scrape_over_plain_http(
    settings: Settings, clean_db: AsyncEngine
) -> None:
    """Prometheus scrapes each replica in plain HTTP on the private network; anyone else, token or not, needs HTTPS."""
    token = "metrics-token-for-the-test"
    for networks, expected in (("127.0.0.1/32", 200), ("10.0.0.0/8", 403)):
        production = replace_settings(
            settings, runtime={"environment": "production"}, metrics={"allowed_networks": networks, "token": token}
        )
        async with serve_on_loopback(create_app(production)) as url, httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == expected
            if expected == 403:
                assert response.json()["code"] == "https_required"
            assert (await http.get("/api/v1/models")).status_code == 403
