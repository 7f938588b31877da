"""Swagger UI and Redoc in a real browser (Debian's Chromium, driven by Playwright) against a real `creditgate serve`:
both pages work with nothing but the service, and "Try it out" answers with the authorized user."""

import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, async_playwright, expect

from tests.support.api import client_token
from tests.support.cluster import Instance, running_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000
NOT_A_NETWORK_REQUEST = {"data", "blob"}


@pytest.fixture(scope="module")
def serve(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One process for the module: starting it costs more than both tests (each uses its own user)."""
    with running_cluster(1, database_url, tmp_path_factory.mktemp("serve")) as cluster:
        yield cluster.instances[0]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Never skipped: a machine without the browser fails this ring, loudly."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system-packages` installs Debian's chromium package (as root)")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Recorded:
    """Every request a page makes, and whether its own Content-Security-Policy refused it before it was sent."""

    def __init__(self, page: Page) -> None:
        self.requests: list[Request] = []
        page.on("request", self._record)

    def _record(self, request: Request) -> None:
        self.requests.append(request)

    def sent_elsewhere(self) -> list[str]:
        return [
            request.url for request in self.requests if not _stays_on_loopback(request.url) and request.failure != "csp"
        ]


def _stays_on_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in NOT_A_NETWORK_REQUEST or parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


async def _page(browser: Browser) -> tuple[Page, Recorded]:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, Recorded(page)


async def test_swagger_ui_authorizes_and_tries_get_me(serve: Instance, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        token = await client_token(http, "swagger-visitor")
    page, recorded = await _page(browser)

    await page.goto(f"{serve.url}/api-docs")
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".dialog-ux")
    await dialog.locator("input").fill(token)
    await dialog.locator("button.authorize").click()
    await dialog.locator("button.btn-done").click()
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
    page, recorded = await _page(browser)

    await page.goto(f"{serve.url}/api-docs/redoc")
    await expect(page.locator("[data-section-id='operation/ApiV1MeMe']")).to_contain_text("/api/v1/me")
    await expect(page.locator("[data-section-id^='operation/']")).to_have_count(operations)
    await page.wait_for_load_state("networkidle")
    assert recorded.sent_elsewhere() == []
