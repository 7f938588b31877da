"""A bounded load through one client: workers alternate streamed generations, plain ones and reads, each request
bounded in time, every outcome kept (with the times it started and ended relative to the run) so a test can tell
what happened before, during and after a fault."""

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from tests.support.api import bearer

HELLO = [{"role": "user", "content": "tell me something"}]
REQUEST_BOUND_SECONDS = 10.0
"""No request may take longer (the replicas bound every database wait by DB_TIMEOUT_SECONDS, Caddy retries for 5 s)."""
KINDS = ("stream", "read", "plain")


@dataclass
class Outcome:
    kind: str
    started: float
    ended: float
    status: int | None = None
    retry_after: str | None = None
    error: str | None = None
    """A transport error or a timeout (the client saw no complete answer)."""
    generation: str | None = None
    """The id of the generation the request started."""
    cost: str | None = None
    """What the client was told the generation cost: a plain answer's, or a stream's `done` event's."""
    stream_error: str | None = None
    """The code of a stream's `error` event."""
    body: bytes = b""
    """A failure's body."""

    @property
    def duration(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    http: httpx.AsyncClient
    tokens: list[str]
    max_tokens: int = 120
    outcomes: list[Outcome] = field(default_factory=list)
    origin: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return time.monotonic() - self.origin

    async def worker(self, index: int, stop: asyncio.Event) -> None:
        turn = index
        while not stop.is_set():
            kind = KINDS[turn % len(KINDS)]
            token = self.tokens[turn % len(self.tokens)]
            turn += 1
            outcome = Outcome(kind, self.now(), 0.0)
            try:
                async with asyncio.timeout(REQUEST_BOUND_SECONDS):
                    await self._one(outcome, token)
            except TimeoutError:
                outcome.error = "timeout"
            except httpx.HTTPError as error:
                outcome.error = type(error).__name__
            outcome.ended = self.now()
            self.outcomes.append(outcome)
            if outcome.status is None or outcome.status >= 500:
                await asyncio.sleep(0.05)  # a client backs off a little from a failure

    async def _one(self, outcome: Outcome, token: str) -> None:
        if outcome.kind == "read":
            response = await self.http.get("/api/v1/me/balance", headers=bearer(token))
            self._answered(outcome, response)
            if response.status_code != 200:
                outcome.body = response.content
            return
        body = {
            "model": "gemini-flash",
            "messages": HELLO,
            "max_tokens": self.max_tokens,
            "stream": outcome.kind == "stream",
        }
        async with self.http.stream("POST", "/api/v1/generations", json=body, headers=bearer(token)) as response:
            self._answered(outcome, response)
            if response.status_code != 200:
                outcome.body = await response.aread()
            elif outcome.kind == "plain":
                generation = json.loads(await response.aread())
                outcome.generation, outcome.cost = generation["id"], generation["cost"]
            else:
                await self._read_events(outcome, response)

    @staticmethod
    def _answered(outcome: Outcome, response: httpx.Response) -> None:
        outcome.status = response.status_code
        outcome.retry_after = response.headers.get("retry-after")

    @staticmethod
    async def _read_events(outcome: Outcome, response: httpx.Response) -> None:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in {"start", "done", "error"}:
                data = json.loads(line.removeprefix("data: "))
                outcome.generation = data["id"]
                if event == "done":
                    outcome.cost = data["cost"]
                elif event == "error":
                    outcome.stream_error = data["code"]
        if outcome.cost is None and outcome.stream_error is None:
            outcome.error = "stream ended without done or error"


@asynccontextmanager
async def running_load(http: httpx.AsyncClient, tokens: list[str], workers: int = 8) -> AsyncIterator[Load]:
    """The load runs for the body of the `async with`; on the way out every worker finishes its request."""
    load = Load(http, tokens)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(load.worker(index, stop)) for index in range(workers)]
    try:
        yield load
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_BOUND_SECONDS + 5)


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    """Outcomes by status (or error), for assertion messages and the report."""
    return dict(Counter(str(o.error or o.stream_error or o.status) for o in outcomes))
