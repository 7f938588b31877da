"""Swagger UI and Redoc work offline: every file their pages load is served by the service itself."""

from html.parser import HTMLParser

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.settings import replace_settings

DOCS_PAGES = ("/api-docs", "/api-docs/redoc")
JAVASCRIPT = {"text/javascript", "application/javascript"}
EXPECTED_TYPES = {".js": JAVASCRIPT, ".css": {"text/css"}, ".png": {"image/png"}}


class _Links(HTMLParser):
    """Every URL a page makes the browser load: `src` and `href` of its tags."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


def _loaded_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_a_docs_page_loads_nothing_from_another_host(client: AsyncTestClient[Litestar], page: str) -> None:
    html = (await client.get(page)).text
    urls = _loaded_urls(html)
    assert urls
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    head = html.split("<body", 1)[0]
    assert "http://" not in head
    assert "https://" not in head
    assert "fonts.googleapis" not in html
    assert "<meta http-equiv='Content-Security-Policy' content=\"default-src 'self';" in head


@pytest.mark.parametrize("page", DOCS_PAGES)
async def test_every_file_a_docs_page_loads_is_served_with_its_type_and_cached(
    client: AsyncTestClient[Litestar], page: str
) -> None:
    for url in _loaded_urls((await client.get(page)).text):
        response = await client.get(url)
        assert response.status_code == 200, url
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type in EXPECTED_TYPES[url[url.rindex(".") :]], (url, media_type)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in response.headers["cache-control"]
        assert "public" in response.headers["cache-control"]


async def test_the_pages_use_swagger_ui_5_and_the_redoc_bundle(client: AsyncTestClient[Litestar]) -> None:
    swagger = _loaded_urls((await client.get("/api-docs")).text)
    redoc = _loaded_urls((await client.get("/api-docs/redoc")).text)
    assert {url.rsplit("/", 1)[1] for url in swagger} == {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
        "favicon-32x32.png",
    }
    assert {url.rsplit("/", 1)[1] for url in redoc} == {"redoc.standalone.js", "favicon-32x32.png"}
    bundle = next(url for url in swagger if url.endswith("swagger-ui-bundle.js"))
    assert 'PACKAGE_VERSION:"5.' in (await client.get(bundle)).text


async def test_an_unknown_or_escaping_asset_is_a_404_problem(client: AsyncTestClient[Litestar]) -> None:
    bundle = next(url for url in _loaded_urls((await client.get("/api-docs")).text) if url.endswith(".js"))
    directory = bundle.rsplit("/", 2)[0]
    for url in (f"{directory}/nope.js", f"{directory}/../../../../pyproject.toml", f"{directory}/%2e%2e/__init__.py"):
        response = await client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"


async def test_production_serves_the_assets_over_https_with_hsts(settings: Settings, clean_db: AsyncEngine) -> None:
    production = create_app(replace_settings(settings, runtime={"environment": "production"}))
    async with AsyncTestClient(app=production, base_url="https://testserver.local") as client:
        urls = _loaded_urls((await client.get("/api-docs")).text)
        responses = [await client.get(url) for url in urls]
    assert [r.status_code for r in responses] == [200] * len(urls)
    assert all(r.headers["strict-transport-security"] for r in responses)
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in responses)
