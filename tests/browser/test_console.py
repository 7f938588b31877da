"""The admin console in a real browser (Debian's Chromium, driven by Playwright) against a real `creditgate serve`.
Each test leaves a screenshot of the pages it saw in `.artifacts/console/` (the README names the folder)."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from tests.support.api import PASSWORD, bearer, login, register
from tests.support.browser import open_page
from tests.support.cluster import Instance, running_cluster
from tests.support.settings import suite_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SCREENSHOTS = Path(__file__).parents[2] / ".artifacts" / "console"
ADMIN = "console-admin"
GENERATION = {"model": "dr14", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 2}


@pytest.fixture(scope="module")
async def serve(console_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    await create_admin(suite_settings(console_database), Registration(username=ADMIN, password=PASSWORD))
    with running_cluster(1, console_database, tmp_path_factory.mktemp("serve")) as cluster:
        yield cluster.instances[0]


async def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def _sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/admin/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_an_admin_signs_in_adjusts_a_balance_once_and_sees_the_charts(serve: Instance, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        user = await register(http, "console-pat")
        admin = bearer((await login(http, ADMIN))["access_token"])
        me = (await http.get("/api/v1/me", headers=admin)).json()
        funding = {"amount": "100", "reason": "charts"}
        await http.post(f"/api/v1/admin/users/{me['id']}/balance", json=funding, headers=admin)
        for _ in range(2):
            assert (await http.post("/api/v1/generations", json=GENERATION, headers=admin)).status_code == 200
    page, recorded = await open_page(browser)

    await _sign_in(page, serve.url, ADMIN)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await expect(page.locator("svg.chart")).to_have_count(4)
    assert await page.locator("svg.chart rect.bar").count() == 2 * 30 + 2  # the days, and the one model used
    today = page.locator("[data-chart='chart-2'] rect.bar").last
    await expect(today).to_have_attribute("aria-label", re.compile(r": 2 generations$"))
    assert float(await today.get_attribute("height") or 0) > 0
    await _screenshot(page, "dashboard")

    await page.get_by_role("link", name="Usage").click()
    await page.get_by_role("link", name="per model").click()
    await page.wait_for_url("**/admin/usage?group_by=model")
    spent = page.locator("[data-chart='chart-usage'] rect.bar")
    await expect(spent).to_have_count(1)  # the one model used
    await expect(spent).to_have_attribute("aria-label", re.compile(rf"^{GENERATION['model']}: [0-9.]+ credits$"))
    assert float(await spent.get_attribute("height") or 0) > 0
    await expect(page.locator("#usage tbody tr")).to_have_count(1)
    await _screenshot(page, "usage")

    await page.get_by_role("link", name="Users").click()
    await page.wait_for_url("**/admin/users")
    await page.wait_for_load_state("load")
    await page.keyboard.press("/")
    await page.keyboard.type("console-p")
    rows = page.locator("#user-rows tr")
    await expect(rows).to_have_count(1)
    await _screenshot(page, "users")
    await rows.get_by_role("link", name="console-pat").click()

    form = page.locator("form#adjust")
    await form.get_by_label("Amount").fill("12.5")
    await form.get_by_label("Reason").fill("pilot credits")
    submission = {
        name: await form.locator(f"input[name='{name}']").input_value()
        for name in ("_csrf_token", "idempotency_key", "amount", "reason")
    }
    await form.get_by_role("button", name="Adjust").click()
    await expect(page.locator(".flash.ok")).to_contain_text("the balance is now 12.5")
    again = await page.request.post(f"{serve.url}/admin/users/{user['id']}/balance", form=submission)
    assert again.status == 200
    await expect(page.locator("[data-balance]")).to_have_text("12.5")
    await _screenshot(page, "user")

    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        ledger = (await http.get(f"/api/v1/admin/users/{user['id']}/transactions", headers=admin)).json()
    assert [(row["amount"], row["reason"]) for row in ledger["items"]] == [("12.5", "pilot credits")]
    await page.wait_for_load_state("networkidle")
    assert recorded.sent_elsewhere() == []


async def test_a_form_posted_without_its_csrf_token_is_refused(serve: Instance, browser: Browser) -> None:
    page, recorded = await open_page(browser)
    await _sign_in(page, serve.url, ADMIN)
    await page.goto(f"{serve.url}/admin/users")
    await page.locator("#user-rows a").first.click()
    form = page.locator("form#adjust")
    await form.locator("input[name='_csrf_token']").evaluate("input => input.remove()")
    await form.get_by_label("Amount").fill("1")
    await form.get_by_label("Reason").fill("forged")
    async with page.expect_response(lambda response: response.request.method == "POST") as posted:
        await form.get_by_role("button", name="Adjust").click()
    assert (await posted.value).status == 403
    await expect(page.locator(".error-page code")).to_have_text("csrf_failed")
    await _screenshot(page, "csrf-refused")
    assert recorded.sent_elsewhere() == []


async def test_a_client_account_cannot_open_any_console_page(serve: Instance, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
        client = await register(http, "console-client")
    page, recorded = await open_page(browser)

    await _sign_in(page, serve.url, "console-client")
    await expect(page.locator("#_form-error")).to_contain_text("not an admin")
    await expect(page.locator("#_form-error code")).to_have_text("forbidden")
    await _screenshot(page, "sign-in-refused")
    for path in ("/admin/", "/admin/users", f"/admin/users/{client['id']}"):
        await page.goto(f"{serve.url}{path}")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert recorded.sent_elsewhere() == []
