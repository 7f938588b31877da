"""A loopback TCP forwarder in front of PostgreSQL that can stop forwarding bytes: a stalled database (a stopped
postmaster accepts connections and never answers) for one test, without stalling the server everyone shares."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from sqlalchemy.engine import make_url

CHUNK = 64 * 1024


class PausableProxy:
    def __init__(self, host: str, port: int) -> None:
        """`host` a directory: PostgreSQL's Unix socket there (the embedded server listens on one only)."""
        self._target = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pipes: set[asyncio.Task[None]] = set()

    def pause(self) -> None:
        """New connections are still accepted; no byte goes either way until `resume()`."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def connected(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await _open(*self._target)
        except OSError:
            client_writer.close()
            return
        for reader, writer in ((client_reader, server_writer), (server_reader, client_writer)):
            pipe = asyncio.create_task(self._pipe(reader, writer))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        for pipe in list(self._pipes):
            pipe.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.gather(*self._pipes, return_exceptions=True)


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if host.startswith("/"):
        return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return await asyncio.open_connection(host, port)


@asynccontextmanager
async def pausable_database(database_url: str) -> AsyncIterator[tuple[str, PausableProxy]]:
    """`database_url` rewritten to a proxy on a free loopback port, and the proxy."""
    url = make_url(database_url)
    socket_directory = url.query.get("host")
    target = socket_directory if isinstance(socket_directory, str) else url.host or "127.0.0.1"
    proxy = PausableProxy(target, url.port or 5432)
    server = await asyncio.start_server(proxy.connected, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxied = url.difference_update_query(["host"]).set(host="127.0.0.1", port=port)
    try:
        yield proxied.render_as_string(hide_password=False), proxy
    finally:
        proxy.resume()
        server.close()
        await proxy.close()
        await server.wait_closed()
