"""Swagger UI and Redoc in a real browser (Debian's Chromium, driven by Playwright) against a real `creditgate serve`:
both pages work with nothing but the service, and "Try it out" answers with the authorized user."""

from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.api import client_token
from tests.support.browser import open_page
from tests.support.cluster import Instance, running_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def serve(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One process for the module: starting it costs more than both tests (each uses its own user)."""
    with running_cluster(1, database_url, tmp_path_factory.mktemp("serve")) as cluster:
        yield cluster.instances[0]


async def test_swagger_ui_authorizes_and_tries_get_me(serve: Instance, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        token = await client_token(http, "swagger-visitor")
    page, recorded = await open_page(browser)

    await page.goto(f"{serve.url}/api-docs")
    await page.locator(".auth-wrapper button.authorize").click()
    bearer_scheme = page.locator(".dialog-ux .auth-container", has=page.locator("#auth-bearer-value"))
    await bearer_scheme.locator("#auth-bearer-value").fill(token)
    await bearer_scheme.locator("button.authorize").click()
    await page.locator(".dialog-ux button.btn-done").first.click()
    me = page.locator(".opblock-get", has=page.locator(".opblock-summary-path[data-path='/api/v1/me']"))
    await me.locator(".opblock-summary").click()
    await me.locator("button.try-out__btn").click()
    await me.locator("button.execute").click()

    live = me.locator(".live-responses-table .response")
    await expect(live.locator(".response-col_status")).to_have_text("200")
    await expect(live.locator(".response-col_description")).to_contain_text('"username": "swagger-visitor"')
    await page.wait_for_load_state("networkidle")
    assert recorded.sent_elsewhere() == []
    assert any(r.url == f"{serve.url}/api/v1/me" for r in recorded.requests)


async def test_redoc_lists_every_operation(serve: Instance, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        document = (await http.get("/api-docs/openapi.json")).json()
    operations = sum(len(item) for item in document["paths"].values())
    page, recorded = await open_page(browser)

    await page.goto(f"{serve.url}/api-docs/redoc")
    await expect(page.locator("[data-section-id='operation/ApiV1MeMe']")).to_contain_text("/api/v1/me")
    await expect(page.locator("[data-section-id^='operation/']")).to_have_count(operations)
    await page.wait_for_load_state("networkidle")
    assert recorded.sent_elsewhere() == []
