"""The console's TypeIDs, API keys, models and generations pages in Debian's Chromium against a real `creditgate
serve`: an admin creates a TypeID, issues a key, signs an HMAC login with the secret the page showed once, revokes
the key and sees the API refuse it."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from tests.support.api import PASSWORD, bearer, fund, login, register, user_id_of
from tests.support.browser import Recorded, open_page
from tests.support.cluster import Instance, running_cluster
from tests.support.keys import signed_login
from tests.support.settings import suite_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SCREENSHOTS = Path(__file__).parents[2] / ".artifacts" / "console"
ADMIN = "console-root"


@pytest.fixture(scope="module")
async def serve(console_database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Instance]:
    await create_admin(suite_settings(console_database), Registration(username=ADMIN, password=PASSWORD))
    with running_cluster(1, console_database, tmp_path_factory.mktemp("serve")) as cluster:
        yield cluster.instances[0]


async def _signed_in(browser: Browser, serve: Instance) -> tuple[Page, Recorded]:
    page, recorded = await open_page(browser)
    await page.set_viewport_size({"width": 1360, "height": 900})
    await page.goto(f"{serve.url}/admin/login")
    await page.get_by_label("Username").fill(ADMIN)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{serve.url}/admin/")
    return page, recorded


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_an_issued_key_signs_in_through_the_api_until_the_console_revokes_it(
    serve: Instance, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        owner = await register(http, "dora")
    page, recorded = await _signed_in(browser, serve)

    await page.goto(f"{serve.url}/admin/typeids/new")
    form = page.locator("#typeid-form")
    await form.locator("[name=scale]").fill("10")
    await form.locator("[name=system]").fill("Grade the text. Answer JSON {score, explanation}.")
    await form.locator("[name=model]").select_option("gemini-flash")
    await form.get_by_role("button", name="Create TypeID").click()
    await expect(page.locator(".flash")).to_contain_text("TypeID created")
    typeid = re.search(r"/admin/typeids/(tid_[a-z2-7]{16})", page.url)
    assert typeid, page.url
    await _shot(page, "console-typeid")
    await page.goto(f"{serve.url}/admin/typeids")
    await expect(page.locator("#typeids")).to_contain_text(typeid.group(1))
    await _shot(page, "console-typeids")

    await page.goto(f"{serve.url}/admin/keys")
    issue = page.locator("#issue")
    await issue.locator("[name=user_id]").fill(str(owner["id"]))
    await issue.locator("[name=typeid]").select_option(typeid.group(1))
    await issue.locator("[name=name]").fill("grading service")
    await issue.get_by_role("button", name="Issue key").click()
    secret = await page.locator("#secret-key").input_value()
    assert secret.startswith("sk_")
    assert secret not in page.url
    api_key = page.url.rsplit("/", 1)[1]
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    await _shot(page, "console-key-issued")

    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        accepted = await http.post("/api/v1/auth", json=signed_login(api_key, "dora", secret))
        assert accepted.status_code == 200, accepted.text

        await page.reload()
        await expect(page.locator("[data-subscription]")).to_have_text("active")
        assert secret not in await page.content()
        await page.get_by_role("button", name="Revoke for good").click()
        await expect(page.locator(".flash")).to_contain_text("Revoked")
        await expect(page.locator("[data-subscription]")).to_have_text("revoked")
        assert secret not in await page.content()
        await _shot(page, "console-key")

        refused = await http.post("/api/v1/auth", json=signed_login(api_key, "dora", secret))
        assert (refused.status_code, refused.json()["code"]) == (401, "key_revoked")
        again = await http.get("/api/v1/me", headers=bearer(accepted.json()["access_token"]))
        assert again.status_code == 401

    await page.goto(f"{serve.url}/admin/keys")
    await expect(page.locator("#keys")).to_contain_text(api_key)
    assert secret not in await page.content()
    await _shot(page, "console-keys")
    assert recorded.sent_elsewhere() == []


async def test_models_and_generations_pages(serve: Instance, browser: Browser) -> None:
    page, recorded = await _signed_in(browser, serve)
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        await register(http, "eli")
        token = (await login(http, "eli"))["access_token"]
        admin = (await login(http, ADMIN))["access_token"]
        await fund(http, admin, await user_id_of(http, token), "50")
        body = {"model": "dr14", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
        run = (await http.post("/api/v1/generations", json=body, headers=bearer(token))).json()

    await page.goto(f"{serve.url}/admin/models")
    await expect(page.locator("#models")).to_contain_text("gemini-flash")
    await _shot(page, "console-models")
    await page.locator("#models").get_by_role("link", name="dr14").click()
    await page.locator("[name='pricing.cached_input_credits']").fill("2")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".flash")).to_contain_text("Saved dr14")
    await _shot(page, "console-model")

    await page.goto(f"{serve.url}/admin/generations")
    await page.locator("#filters [name=status]").select_option("completed")
    await page.locator("#filters [name=model]").select_option("dr14")
    await page.locator("#filters").get_by_role("button", name="Filter").click()
    await expect(page.locator("#generations")).to_contain_text("dr14")
    await _shot(page, "console-generations")
    await page.locator("#generations a").first.click()
    await expect(page.locator("h1")).to_contain_text(run["id"])
    await expect(page.locator("#usage")).to_contain_text(run["cost"])
    await _shot(page, "console-generation")
    assert recorded.sent_elsewhere() == []
