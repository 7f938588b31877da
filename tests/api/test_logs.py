"""SPEC §9 / RELIABILITY T4 in process: log lines say who did what and what it cost, and never carry a secret."""

import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient
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
