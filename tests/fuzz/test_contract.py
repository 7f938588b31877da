"""R1: Schemathesis against the served OpenAPI document, in-process, as a client, an admin and a key token.

Phases examples, coverage and fuzzing for every operation, then a stateful run over the document's links,
every check, a fixed seed; the ledger identity (M1) is audited after the module. `make fuzz` raises the counts.
"""

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import FlakyStrategyDefinition
from hypothesis.stateful import run_state_machine_as_test
from litestar import Litestar
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.postgres.engine import asyncpg_url
from application.accounts.register import Registration
from entrypoints.cli import create_admin
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.api import PASSWORD
from tests.support.audit import ledger_violations
from tests.support.database import throwaway_database
from tests.support.keys import signed_login
from tests.support.settings import replace_settings, suite_settings

pytestmark = pytest.mark.timeout(600)

CONFIG = SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
TYPE = {
    "scale": 10,
    "system": "You grade texts. Answer JSON {score, explanation}.",
    "user": "Reference:\n{reference}\n\nText:\n{text}\n\nScore from 0 to {scale}.",
    "llm": "simulator",
}
# Each key token's TypeID gets a model of its own: the admin's fuzzing may change or delete any seeded one.
MODEL = {
    "provider": "simulator",
    "upstream_model": "fuzz",
    "pricing": {"unit_tokens": 1000, "input_credits": "0.01", "output_credits": "0.02"},
    "max_output_tokens": 256,
}


@pytest.fixture(scope="module")
def fuzz_settings(postgres_server_url: str) -> Iterator[Settings]:
    """A database of its own (the module shares one app and its rows), limits off, the simulator instant."""
    with throwaway_database(postgres_server_url) as url:
        yield replace_settings(suite_settings(url), accounts={"registrations_per_hour": 0, "login_failure_limit": 0})


@pytest.fixture(scope="module")
def fuzz_app(fuzz_settings: Settings) -> Iterator[Litestar]:
    app = create_app(fuzz_settings)
    yield app
    asgi.shutdown_lifespans()
    violations = asyncio.run(_audit(fuzz_settings))
    assert violations == [], violations


async def _audit(fuzz_settings: Settings) -> list[str]:
    engine = create_async_engine(asyncpg_url(fuzz_settings.database.require_url()))
    try:
        return await ledger_violations(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Litestar) -> Any:
    return schemathesis.openapi.from_asgi("/api-docs/openapi.json", fuzz_app, config=CONFIG)


class Minter:
    """Speaks the API through the same in-process client Schemathesis uses (one event loop for the app)."""

    def __init__(self, app: Litestar, app_settings: Settings) -> None:
        self.app = app
        self.settings = app_settings

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with asgi.get_client(self.app) as client:
            response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def user(self, role: str) -> tuple[str, str]:
        username = f"{role}_{secrets.token_hex(6)}"
        if role == "admin":
            asyncio.run(create_admin(self.settings, Registration(username=username, password=PASSWORD)))
        else:
            self.call("POST", "/api/v1/auth/register", json={"username": username, "password": PASSWORD})
        body = {"username": username, "password": PASSWORD}
        return username, self.call("POST", "/api/v1/auth/login", json=body)["access_token"]

    def token(self, identity: str) -> str:
        _, admin = self.user("admin")
        if identity == "admin":
            return admin
        username, token = self.user("client")
        user_id = self.call("GET", "/api/v1/me", token)["id"]
        funding = {"amount": "1000", "reason": "fuzzing"}
        self.call("POST", f"/api/v1/admin/users/{user_id}/balance", admin, json=funding)
        if identity == "client":
            return token
        typeid = f"fuzz-{secrets.token_hex(4)}"
        model = self.call("POST", "/api/v1/admin/models", admin, json=MODEL | {"id": typeid})
        self.call("POST", "/api/v1/types", admin, json=TYPE | {"typeid": typeid, "model": model["id"]})
        key = self.call("POST", "/api/v1/keys", admin, json={"user_id": user_id, "typeid": typeid})
        login = signed_login(key["api_key"], username, key["secret_key"])
        return str(self.call("POST", "/api/v1/auth", json=login)["access_token"])


@pytest.fixture(params=["client", "admin", "key"])
def identity(request: pytest.FixtureRequest, fuzz_app: Litestar, fuzz_settings: Settings) -> dict[str, str]:
    """Authorization headers of a freshly minted principal of that kind."""
    return {"Authorization": f"Bearer {Minter(fuzz_app, fuzz_settings).token(request.param)}"}


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32 renames the running node through `_nodeid`, which pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@FUZZ_SETTINGS
@pytest.mark.usefixtures("identity")
def test_every_operation_keeps_its_contract(case: Any, identity: dict[str, str]) -> None:
    case.call_and_validate(headers=identity)


@pytest.mark.parametrize("role", ["client", "admin", "key"])
def test_stateful_sequences_keep_the_contract(
    api_schema: Any, fuzz_app: Litestar, fuzz_settings: Settings, role: str
) -> None:
    headers = {"Authorization": f"Bearer {Minter(fuzz_app, fuzz_settings).token(role)}"}

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

    # The links open to the machine depend on what the server already holds, so a later example can find a
    # choice an earlier one did not have; Schemathesis' own runner ends exploration there instead of failing
    # (engine/run/stateful/_executor.py), and so does this test. Check failures still fail it.
    with contextlib.suppress(FlakyStrategyDefinition):
        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=8,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            ),
        )
