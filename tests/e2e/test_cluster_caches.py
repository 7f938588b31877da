"""Each instance caches catalog models; a change made through one instance takes effect on the others at once."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from application.accounts.register import Registration
from entrypoints.cli import create_admin
from entrypoints.settings import Settings
from tests.support.api import PASSWORD, bearer
from tests.support.audit import ledger_violations
from tests.support.cluster import running_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HELLO = [{"role": "user", "content": "Say hello to the world"}]
GENERATION = {"model": "dr14", "messages": HELLO, "max_tokens": 2}


async def test_a_model_changed_through_one_instance_changes_on_the_other_at_once(
    settings: Settings, database_url: str, tmp_path: Path, clean_db: AsyncEngine
) -> None:
    await create_admin(settings, Registration(username="cache-admin", password=PASSWORD))
    with running_cluster(2, database_url, tmp_path) as cluster:
        first, second = cluster.urls
        async with httpx.AsyncClient(timeout=30) as http:
            login = {"username": "cache-admin", "password": PASSWORD}
            admin = bearer((await http.post(f"{first}/api/v1/auth/login", json=login)).json()["access_token"])
            me = (await http.get(f"{first}/api/v1/me", headers=admin)).json()
            funding = {"amount": "1000", "reason": "test"}
            await http.post(f"{first}/api/v1/admin/users/{me['id']}/balance", json=funding, headers=admin)

            async def generate() -> httpx.Response:
                return await http.post(f"{second}/api/v1/generations", json=GENERATION, headers=admin)

            for _ in range(5):  # the second instance has dr14 cached by now
                assert (await generate()).status_code == 200
            model = f"{first}/api/v1/admin/models/dr14"
            assert (await http.patch(model, json={"enabled": False}, headers=admin)).status_code == 200
            refused = await generate()
            assert (refused.status_code, refused.json()["code"]) == (404, "model_not_found")

            pricing = {"unit_tokens": 1, "input_credits": "1", "output_credits": "1"}
            changed = await http.patch(model, json={"enabled": True, "pricing": pricing}, headers=admin)
            assert changed.status_code == 200
            repriced = (await generate()).json()
            assert repriced["cost"] == str(repriced["usage"]["input_tokens"] + repriced["usage"]["output_tokens"])
    assert await ledger_violations(clean_db) == []


async def test_a_user_deactivated_or_demoted_through_one_instance_is_refused_by_the_other_at_once(
    settings: Settings, database_url: str, tmp_path: Path, clean_db: AsyncEngine
) -> None:
    await create_admin(settings, Registration(username="cache-root", password=PASSWORD))
    await create_admin(settings, Registration(username="cache-deputy", password=PASSWORD))
    with running_cluster(2, database_url, tmp_path) as cluster:
        first, second = cluster.urls
        async with httpx.AsyncClient(timeout=30) as http:

            async def login(base: str, username: str) -> dict[str, str]:
                body = {"username": username, "password": PASSWORD}
                return bearer((await http.post(f"{base}/api/v1/auth/login", json=body)).json()["access_token"])

            root, deputy = await login(first, "cache-root"), await login(second, "cache-deputy")
            deputy_id = (await http.get(f"{second}/api/v1/me", headers=deputy)).json()["id"]
            for _ in range(3):  # the second instance has the deputy's standing cached by now
                assert (await http.get(f"{second}/api/v1/admin/users", headers=deputy)).status_code == 200
            user = f"{first}/api/v1/admin/users/{deputy_id}"
            assert (await http.patch(user, json={"role": "client"}, headers=root)).status_code == 200
            assert (await http.get(f"{second}/api/v1/admin/users", headers=deputy)).status_code in {401, 403}
            assert (await http.patch(user, json={"is_active": False}, headers=root)).status_code == 200
            assert (await http.get(f"{second}/api/v1/me", headers=deputy)).status_code == 401
