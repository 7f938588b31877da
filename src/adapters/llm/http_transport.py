"""The upstream HTTP transport: httpx's connection pool, split into shards.

httpcore's pool does work quadratic in its connection count on every request start and end (each idle connection
is checked for expiry with a `poll` syscall, and counted against the keep-alive limit by a scan of all the others).
At 256 concurrent streams that cost more CPU than relaying the stream. Requests go round-robin to `shards` small
pools instead; each pool keeps its own keep-alive connections.
"""

from itertools import cycle

import httpx


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, shards: int, limits: httpx.Limits) -> None:
        per_shard = httpx.Limits(
            max_connections=None if limits.max_connections is None else -(-limits.max_connections // shards),
            max_keepalive_connections=(
                None if limits.max_keepalive_connections is None else -(-limits.max_keepalive_connections // shards)
            ),
            keepalive_expiry=limits.keepalive_expiry,
        )
        tls = httpx.create_ssl_context()  # loading the CA bundle takes ~25 ms and memory: once, not per shard
        self._shards = [httpx.AsyncHTTPTransport(verify=tls, limits=per_shard) for _ in range(shards)]
        self._next = cycle(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
