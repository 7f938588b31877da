"""The upstream HTTP client: httpx's API over aiohttp's connection pool and C HTTP parser.

httpx's own transport (httpcore, pure Python, h11) costs about 90 µs of CPU per SSE chunk read; over aiohttp it is
about 17 µs (docs/benchmarks.md). One pooled session per process; a response closed before its body is fully read
closes its connection (aiohttp never returns a half-read connection to the pool), so a client gone mid-stream
stops the upstream at once.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


@asynccontextmanager
async def upstream_client(
    timeouts: httpx.Timeout, max_connections: int, keepalive_seconds: float
) -> AsyncIterator[httpx.AsyncClient]:
    tls = httpx.create_ssl_context()  # loading the CA bundle takes ~25 ms and memory: once per process
    connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=keepalive_seconds, ssl=tls)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    async with httpx.AsyncClient(timeout=timeouts, transport=AiohttpTransport(client=session)) as client:
        yield client
