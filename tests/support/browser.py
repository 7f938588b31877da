"""Debian's Chromium, driven by Playwright, and a record of every request a page makes."""

import ipaddress
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Request

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000
NOT_A_NETWORK_REQUEST = {"data", "blob"}


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


async def open_page(browser: Browser) -> tuple[Page, Recorded]:
    """A page in a context of its own: its cookies (a console session) are not another test's."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, Recorded(page)
