from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.browser import CHROMIUM_ARGS
from tests.support.database import throwaway_database

CHROMIUM = Path("/usr/bin/chromium")


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


@pytest.fixture(scope="module")
def console_database(postgres_server_url: str) -> Iterator[str]:
    """A database of the module's own: the console shows every user's figures, so no other test's rows may show."""
    with throwaway_database(postgres_server_url) as url:
        yield url
