"""SPEC §9 / RELIABILITY T4 in process: log lines say who did what and what it cost, and never carry a secret."""

import uuid

import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from entrypoints.settings import Settings
from tests.support.canaries import representative_flow


async def test_no_secret_reaches_a_log_line_and_each_line_has_its_context(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        flow = await representative_flow(client, settings)

    assert flow.hits(repr(entries)) == []
    requests = [entry for entry in entries if entry["event"] == "request"]
    assert len(requests) == len(flow.statuses)
    assert all(entry["request_id"] for entry in requests)
    assert {entry["api_key"] for entry in requests if entry.get("user_id") == flow.user_id} == {None, flow.api_key}
    [settled] = [entry for entry in entries if entry["event"] == "generation_settled"]
    assert settled["user_id"] == flow.user_id
    assert settled["model"] == "gemini-flash"
    assert settled["input_tokens"] > 0
    assert settled["output_tokens"] > 0
    assert settled["cost"] != "0"
    assert settled["request_id"]


async def test_a_database_error_is_logged_without_its_statement_s_values(
    client: AsyncTestClient[Litestar], clean_db: AsyncEngine
) -> None:
    """The row PostgreSQL refuses carries a password hash and an e-mail: neither SQLAlchemy's `[parameters: …]`
    nor the driver's `DETAIL: Failing row contains (…)` may reach the log line."""
    tag = uuid.uuid4().hex[:10]
    username, email = f"canary-user-{tag}", f"canary-{tag}@example.com"
    async with clean_db.begin() as connection:
        for statement in _BREAK_USER_INSERTS:
            await connection.execute(text(statement))
    rendering = structlog.get_config()["processors"][:-1]  # everything the app configured but the renderer
    try:
        with capture_logs(processors=rendering) as entries:
            response = await client.post(
                "/api/v1/auth/register", json={"username": username, "password": "pw-canary-x", "email": email}
            )
    finally:
        async with clean_db.begin() as connection:
            await connection.execute(text("DROP TRIGGER break_user_inserts ON users"))
            await connection.execute(text("DROP FUNCTION break_user_inserts()"))

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    [logged] = [entry for entry in entries if entry["event"] == "unhandled_error"]
    rendered = repr(logged)
    assert "CheckViolation" in rendered  # what went wrong still shows, with the statement
    assert "INSERT INTO users" in rendered
    for value in (username, email, "$argon2", "Failing row"):
        assert value not in rendered


_BREAK_USER_INSERTS = (
    "CREATE FUNCTION break_user_inserts() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN NEW.role := 'nobody'; RETURN NEW; END $$",
    "CREATE TRIGGER break_user_inserts BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION break_user_inserts()",
)
