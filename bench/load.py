"""The load generator: a fixed number of workers, each sending OpenAI chat completions one after another over a
keep-alive pool, for a warmup then a measured duration. Prints one JSON `LoadResult` on stdout.

Counted in the measured window only: requests that started and finished inside it (latency, time to first body
byte), requests that finished inside it (`completed`: the work whose CPU the window holds), and `data:` events that
arrived inside it (chunk rate, whichever request they belong to). `--start-at` (a Unix time) opens the window at
the same moment as the caller's CPU sampling.
"""

import argparse
import asyncio
import time

import aiohttp
import msgspec
import uvloop

_DATA = b"data:"


class LoadResult(msgspec.Struct, kw_only=True):
    target: str
    concurrency: int
    stream: bool
    duration_s: float
    requests: int
    errors: int
    first_error: str | None
    rps: float
    completed: int
    completed_per_s: float
    latency_ms: dict[str, float]
    ttfb_ms: dict[str, float]
    chunks: int
    chunks_per_s: float
    chunks_per_request: float


class _Window:
    def __init__(self, start_at: float, duration_s: float) -> None:
        self.start = time.perf_counter() + (start_at - time.time())
        self.end = self.start + duration_s
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.chunks = 0
        self.chunks_of_counted = 0
        self.completed = 0
        self.errors = 0
        self.first_error: str | None = None

    def inside(self, moment: float) -> bool:
        return self.start <= moment < self.end

    def error(self, what: str) -> None:
        if self.inside(time.perf_counter()):
            self.errors += 1
        self.first_error = self.first_error or what


async def _worker(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], window: _Window
) -> None:
    while (started := time.perf_counter()) < window.end:
        first_byte: float | None = None
        chunks = 0
        tail = b""
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    window.error(f"HTTP {response.status}: {(await response.read())[:300]!r}")
                    await asyncio.sleep(0.05)
                    continue
                async for data in response.content.iter_any():
                    now = time.perf_counter()
                    first_byte = first_byte or now
                    seen = (tail + data).count(_DATA)
                    tail = data[-4:]
                    chunks += seen
                    if window.inside(now):
                        window.chunks += seen
        except (aiohttp.ClientError, TimeoutError) as exc:
            window.error(repr(exc))
            await asyncio.sleep(0.05)
            continue
        finished = time.perf_counter()
        if window.inside(finished):
            window.completed += 1
        if started >= window.start and finished < window.end:
            window.latencies.append(finished - started)
            window.ttfbs.append((first_byte or finished) - started)
            window.chunks_of_counted += chunks


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1] * 1000, 3)}


async def run(
    url: str, tokens: list[str], model: str, *, stream: bool, concurrency: int, start_at: float, duration_s: float
) -> LoadResult:
    request: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say something about benchmarks, please."}],
        "stream": stream,
    }
    if stream:
        request["stream_options"] = {"include_usage": True}
    body = msgspec.json.encode(request)
    window = _Window(start_at, duration_s)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = [{"content-type": "application/json"} | ({"authorization": f"Bearer {t}"} if t else {}) for t in tokens]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(
            *(_worker(session, url, body, headers[i % len(headers)], window) for i in range(concurrency))
        )
    requests = len(window.latencies)
    return LoadResult(
        target=url,
        concurrency=concurrency,
        stream=stream,
        duration_s=duration_s,
        requests=requests,
        errors=window.errors,
        first_error=window.first_error,
        rps=round(requests / duration_s, 1),
        completed=window.completed,
        completed_per_s=round(window.completed / duration_s, 1),
        latency_ms=percentiles(window.latencies),
        ttfb_ms=percentiles(window.ttfbs),
        chunks=window.chunks,
        chunks_per_s=round(window.chunks / duration_s, 1),
        chunks_per_request=round(window.chunks_of_counted / requests, 2) if requests else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the chat completions URL")
    parser.add_argument("--token", action="append", default=[], help="bearer token; repeat to spread over users")
    parser.add_argument("--model", required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--start-at", type=float, help="Unix time the measured window opens (instead of --warmup)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    args = parser.parse_args()
    result = uvloop.run(
        run(
            args.url,
            args.token or [""],
            args.model,
            stream=args.stream,
            concurrency=args.concurrency,
            start_at=args.start_at or time.time() + args.warmup,
            duration_s=args.duration,
        )
    )
    print(msgspec.json.encode(result).decode())


if __name__ == "__main__":
    main()
