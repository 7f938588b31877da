"""The `gemini` adapter against llm-katan: a real server speaking Gemini's streamGenerateContent (echo backend)
whose failure injection gives real 429/500/503/504 answers and real stalls. Retries happen only before the first
token: llm-katan fails before it streams, so every failure here is retried or not by its status alone."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from llm_katan.config import ServerConfig
from llm_katan.server import create_app

from adapters.llm.gemini import GeminiProvider
from adapters.llm.sse_lines import RETRY_DELAYS_S
from application.ports.llm import ChatMessage, CompletionRequest
from domain.errors import ProviderUnavailable, UpstreamError
from tests.contract.conftest import COUNTER, run
from tests.support.servers import serve_on_loopback

KEY = "gemini-contract-key-7c1e"
READ_TIMEOUT_S = 1.0
ATTEMPTS = 1 + len(RETRY_DELAYS_S)
REQUEST = CompletionRequest(
    upstream_model="gemini-2.5-flash",
    messages=[ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello to the contract suite.")],
    max_tokens=7,
)
Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]


def accept_goog_api_key(app: Asgi) -> Asgi:
    """llm-katan reads the key from `Authorization: Bearer` or `?key=`; Google's API (and the adapter) send it in
    `x-goog-api-key`. Translated here, so key validation stays on."""

    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = list(scope["headers"])
            headers += [(b"authorization", b"Bearer " + value) for name, value in headers if name == b"x-goog-api-key"]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return wrapped


class Katan:
    def __init__(self, app: Any, host: str) -> None:
        self.app = app
        self.host = host

    @property
    def config(self) -> ServerConfig:
        return self.app.state.config  # type: ignore[no-any-return]

    @property
    def requests(self) -> int:
        """Requests that reached the backend (llm-katan counts them to inject its failures)."""
        return int(self.app.state.backend._request_count)

    def reset(self) -> None:
        self.app.state.backend._request_count = 0
        for name in ("error_rate", "latency_ms", "timeout_after", "rate_limit_after", "max_inflight"):
            setattr(self.config, name, type(getattr(self.config, name))(0))


@pytest.fixture(scope="module")
async def katan() -> AsyncIterator[Katan]:
    config = ServerConfig(
        model_name="gemini-2.5-flash",
        backend="echo",
        providers=["vertexai"],
        validate_keys=True,
        api_keys={"vertexai": KEY},
        dashboard_enabled=False,
        host="127.0.0.1",
    )
    app = create_app(config)
    async with serve_on_loopback(accept_goog_api_key(app)) as host:
        yield Katan(app, host)


@pytest.fixture
async def gemini(katan: Katan) -> AsyncIterator[GeminiProvider]:
    katan.reset()
    timeout = httpx.Timeout(connect=2, read=READ_TIMEOUT_S, write=5, pool=5)
    async with httpx.AsyncClient(timeout=timeout) as client:
        yield GeminiProvider(client, katan.host, KEY, COUNTER)
    katan.reset()


async def test_streams_text_and_reports_the_usage_it_counted(gemini: GeminiProvider, katan: Katan) -> None:
    outcome = await run(gemini, REQUEST)
    assert outcome.error is None
    assert len(outcome.texts) > 1
    assert outcome.text.startswith("[echo] model=gemini-2.5-flash")
    assert "User: Say hello to the contract suite." in outcome.text
    assert "max_tokens=7" in outcome.text  # generationConfig.maxOutputTokens reached the server
    assert "messages=2" in outcome.text  # the systemInstruction and the user turn
    # llm-katan's own count: words of every message, words of its answer
    assert [(u.input_tokens, u.output_tokens) for u in outcome.usages] == [(2 + 6, len(outcome.text.split()))]
    assert katan.requests == 1


async def test_a_wrong_key_is_an_upstream_error(katan: Katan) -> None:
    katan.reset()
    async with httpx.AsyncClient(timeout=5) as client:
        outcome = await run(GeminiProvider(client, katan.host, "wrong-key", COUNTER), REQUEST)
    assert isinstance(outcome.error, UpstreamError)
    assert "401" in str(outcome.error)
    assert outcome.texts == []


async def test_429_is_retried_then_provider_unavailable(gemini: GeminiProvider, katan: Katan) -> None:
    katan.config.rate_limit_after = 1
    assert (await run(gemini, REQUEST)).error is None
    outcome = await run(gemini, REQUEST)
    assert isinstance(outcome.error, ProviderUnavailable)
    assert "429" in str(outcome.error)
    assert outcome.texts == []
    assert katan.requests == 1 + ATTEMPTS


async def test_503_is_retried_then_provider_unavailable(gemini: GeminiProvider, katan: Katan) -> None:
    """max_inflight=1 with one slow request in flight: every other request is answered 503 at once."""
    katan.config.max_inflight = 1
    katan.config.latency_ms = 1000
    async with httpx.AsyncClient(timeout=10) as patient:
        slow = asyncio.create_task(run(GeminiProvider(patient, katan.host, KEY, COUNTER), REQUEST))
        while katan.requests == 0:
            await asyncio.sleep(0.01)
        outcome = await run(gemini, REQUEST)
        assert (await slow).error is None  # llm-katan serves one request at a time: let it finish
    assert isinstance(outcome.error, ProviderUnavailable)
    assert "503" in str(outcome.error)
    assert katan.requests == 1  # the 503s were answered before reaching the backend's counter


async def test_500_is_an_upstream_error_without_retry(gemini: GeminiProvider, katan: Katan) -> None:
    katan.config.error_rate = 1.0
    outcome = await run(gemini, REQUEST)
    assert isinstance(outcome.error, UpstreamError)
    assert "500" in str(outcome.error)
    assert katan.requests == 1


async def test_504_is_an_upstream_error_without_retry(gemini: GeminiProvider, katan: Katan) -> None:
    katan.config.timeout_after = 1
    assert (await run(gemini, REQUEST)).error is None
    outcome = await run(gemini, REQUEST)
    assert isinstance(outcome.error, UpstreamError)
    assert "504" in str(outcome.error)
    assert katan.requests == 2


async def test_a_server_slower_than_the_read_timeout_is_an_upstream_error(gemini: GeminiProvider, katan: Katan) -> None:
    katan.config.latency_ms = int(READ_TIMEOUT_S * 1000) + 300
    outcome = await run(gemini, REQUEST)
    await asyncio.sleep(0.4)  # the abandoned request still holds llm-katan's only slot until its latency ends
    assert isinstance(outcome.error, UpstreamError)
    assert outcome.texts == []
    assert katan.requests == 1  # a stall is not retried: the request may be running upstream
