"""A minimal, fast OpenAI-compatible upstream for the benchmark: `POST /v1/chat/completions`, raw asyncio + httptools.

The requested `model` names the behaviour, so one server plays every scenario: `d{delay}-n{chunks}-i{interval}`
waits `delay` ms, then answers `chunks` tokens; streamed, they are sent `interval` ms apart (the first at once),
followed by the `finish_reason` chunk, a `usage` chunk when `stream_options.include_usage`, and `[DONE]`. A
non-streamed answer is sent when its last token would have been, as a real model takes as long to write it whole.
Everything a response writes is encoded once per model, so the server costs little CPU next to the gateway.
"""

import argparse
import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import cast

import httptools
import msgspec
import uvloop

PROMPT_TOKENS = 12
_MODEL = re.compile(r"^d(\d+)-n(\d+)-i(\d+)$")
_STREAM_HEADERS = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


class _StreamOptions(msgspec.Struct):
    include_usage: bool = False


class _Request(msgspec.Struct):
    model: str = ""
    stream: bool = False
    stream_options: _StreamOptions | None = None


_DECODER = msgspec.json.Decoder(_Request)


@dataclass(frozen=True, slots=True)
class Behaviour:
    delay_s: float
    interval_s: float
    whole_after_s: float
    chunks: tuple[bytes, ...]  # each token's SSE event, framed as one HTTP chunk
    tail: bytes  # the finish_reason event and [DONE], then the last HTTP chunk
    tail_with_usage: bytes
    whole: bytes  # the complete non-streaming HTTP response


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(payload: object) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


@cache
def behaviour(model: str) -> Behaviour | None:
    match = _MODEL.match(model)
    if match is None:
        return None
    delay_ms, count, interval_ms = (int(group) for group in match.groups())
    texts = [f"tok{i} " for i in range(count)]
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": model}
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": count, "total_tokens": PROMPT_TOKENS + count}
    chunks = tuple(
        _chunked(_event(base | {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}))
        for text in texts
    )
    finish = _chunked(_event(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    usage_event = _chunked(_event(base | {"choices": [], "usage": usage}))
    done = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    body = msgspec.json.encode(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(texts)}, "finish_reason": "stop"}
            ],
            "usage": usage,
        }
    )
    whole = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    whole_after_s = (delay_ms + interval_ms * max(count - 1, 0)) / 1000
    tails = (finish + done, finish + usage_event + done)
    return Behaviour(delay_ms / 1000, interval_ms / 1000, whole_after_s, chunks, *tails, whole)


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order, the next one is parsed after the answer."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._body: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's TCP transport does not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._close()

    def on_message_begin(self) -> None:
        self._body = []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        try:
            request = _DECODER.decode(b"".join(self._body))
        except msgspec.DecodeError:
            request = _Request()
        plan = behaviour(request.model)
        if plan is None:
            self._write(_NOT_FOUND)
            return
        include_usage = request.stream_options is not None and request.stream_options.include_usage
        loop = asyncio.get_running_loop()
        if not request.stream:
            self._later(loop, plan.whole_after_s, self._write, plan.whole)
            return
        tail = plan.tail_with_usage if include_usage else plan.tail
        self._later(loop, plan.delay_s, self._stream, plan, tail, 0, loop.time() + plan.delay_s)

    def _later(
        self, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[..., None], *args: object
    ) -> None:
        if delay <= 0:
            callback(*args)
        else:
            self._timer = loop.call_later(delay, callback, *args)

    def _stream(self, plan: Behaviour, tail: bytes, index: int, started: float) -> None:
        """Token `index` at `started + index * interval` (a fixed schedule: late ticks do not push later ones)."""
        self._timer = None
        if self._transport is None:
            return
        if index == 0:
            self._transport.write(_STREAM_HEADERS)
        if index >= len(plan.chunks):
            self._transport.write(tail)
            return
        if plan.interval_s <= 0:
            self._transport.write(b"".join(plan.chunks[index:]) + tail)
            return
        self._transport.write(plan.chunks[index])
        self._timer = asyncio.get_running_loop().call_at(
            started + (index + 1) * plan.interval_s, self._stream, plan, tail, index + 1, started
        )

    def _write(self, data: bytes) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=2048)
    print(f"upstream listening on http://{host}:{port}/v1 at {time.strftime('%X')}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
