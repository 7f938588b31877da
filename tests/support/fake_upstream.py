"""A real HTTP upstream speaking the OpenAI, Anthropic and Gemini streaming protocols, driven by a script.

The test sets `upstream.use(script)`; every request then plays it and is recorded: its body and headers, the chunks
sent, and the monotonic time at which the client was seen going away (LiteLLM #30245 harness).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Protocol

from tests.support.servers import serve_on_loopback

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Usage = tuple[object, object]

PROMPT_TOKENS = 11
ANTHROPIC_ERROR_TYPES = MappingProxyType(
    {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error", 503: "overloaded_error"}
)
GEMINI_STATUSES = MappingProxyType(
    {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
)


@dataclass(frozen=True)
class Script:
    texts: tuple[str, ...] = ()
    delay_s: float = 0.0
    usage: Usage | None = None
    status: int = 200
    # complete: end marker and a clean end; stall: keep the connection open and silent; abort: close the connection
    # without finishing the body; truncated: a clean end of the body, but without the vendor's end marker.
    ending: Literal["complete", "stall", "abort", "truncated"] = "complete"
    raw_lines: tuple[str, ...] | None = None
    retry_after: int | None = None  # sent as Retry-After with an error status

    @property
    def text(self) -> str:
        return "".join(self.texts)


def _texts(n: int) -> tuple[str, ...]:
    return tuple(f"tok{i} " for i in range(n))


def steady(n: int, delay_s: float = 0.0) -> Script:
    return Script(_texts(n), delay_s, usage=(PROMPT_TOKENS, n))


def with_usage(n: int, input_tokens: object, output_tokens: object) -> Script:
    return Script(_texts(n), usage=(input_tokens, output_tokens))


def with_usage_text(text: str) -> Script:
    """One whole answer (a model's JSON, say) in a single chunk, reporting 40 prompt and 4 completion tokens."""
    return Script((text,), usage=(40, 4))


def no_usage(n: int) -> Script:
    return Script(_texts(n))


def stall(after_n: int) -> Script:
    return Script(_texts(after_n), usage=(PROMPT_TOKENS, after_n), ending="stall")


def fail_before_first(status: int) -> Script:
    return Script(status=status)


def fail_after(k: int) -> Script:
    return Script(_texts(k), usage=(PROMPT_TOKENS, k), ending="abort")


def truncated(n: int) -> Script:
    return Script(_texts(n), usage=(PROMPT_TOKENS, n), ending="truncated")


def garbage(lines: Iterable[str]) -> Script:
    return Script(raw_lines=tuple(lines))


def huge_chunk(size: int) -> Script:
    return Script(("x" * size,), usage=(PROMPT_TOKENS, 1))


@dataclass
class RecordedRequest:
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]
    client_port: int | None = None  # the same port twice: the client reused its keep-alive connection
    chunks_sent: int = 0
    completed: bool = False
    disconnected_at: float | None = None


def _sse(payload: object, event: str | None = None, newline: str = "\n") -> bytes:
    lines = ([f"event: {event}"] if event else []) + [f"data: {json.dumps(payload)}"]
    return (newline.join(lines) + newline * 2).encode()


class _Wire(Protocol):
    def opening(self, usage: Usage | None) -> list[bytes]: ...
    def delta(self, text: str) -> bytes: ...
    def closing(self, usage: Usage | None) -> list[bytes]: ...
    def error(self, status: int) -> dict[str, Any]: ...


class _OpenAI:
    def opening(self, usage: Usage | None) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def delta(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def closing(self, usage: Usage | None) -> list[bytes]:
        frames = [self._chunk({}, finish_reason="stop")]
        if usage is not None:
            frames.append(_sse({"object": "chat.completion.chunk", "choices": [], "usage": self.usage(usage)}))
        return [*frames, b"data: [DONE]\n\n"]

    def error(self, status: int) -> dict[str, Any]:
        return {"error": {"message": f"fake failure {status}", "type": "server_error", "param": None, "code": None}}

    @staticmethod
    def usage(usage: Usage) -> dict[str, object]:
        return {"prompt_tokens": usage[0], "completion_tokens": usage[1]}

    @staticmethod
    def _chunk(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [choice]})


class _Anthropic:
    def opening(self, usage: Usage | None) -> list[bytes]:
        message: dict[str, Any] = {"id": "msg_fake", "type": "message", "role": "assistant", "content": []}
        if usage is not None:
            message["usage"] = {"input_tokens": usage[0], "output_tokens": 1}
        return [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
            _sse({"type": "ping"}, "ping"),
        ]

    def delta(self, text: str) -> bytes:
        payload = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        return _sse(payload, "content_block_delta")

    def closing(self, usage: Usage | None) -> list[bytes]:
        message_delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
        if usage is not None:
            message_delta["usage"] = {"output_tokens": usage[1]}
        return [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(message_delta, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]

    def error(self, status: int) -> dict[str, Any]:
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": f"fake failure {status}"}}


class _Gemini:
    def opening(self, usage: Usage | None) -> list[bytes]:
        return []

    def delta(self, text: str) -> bytes:
        return self._chunk({"content": {"role": "model", "parts": [{"text": text}]}, "index": 0})

    def closing(self, usage: Usage | None) -> list[bytes]:
        candidate = {"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}
        if usage is None:
            return [self._chunk(candidate)]
        metadata = {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1]}
        return [_sse({"candidates": [candidate], "usageMetadata": metadata}, newline="\r\n")]

    def error(self, status: int) -> dict[str, Any]:
        return {
            "error": {
                "code": status,
                "message": f"fake failure {status}",
                "status": GEMINI_STATUSES.get(status, "INTERNAL"),
            }
        }

    @staticmethod
    def _chunk(candidate: dict[str, Any]) -> bytes:
        return _sse({"candidates": [candidate], "modelVersion": "fake"}, newline="\r\n")  # Gemini frames with CRLF


OPENAI, ANTHROPIC, GEMINI = _OpenAI(), _Anthropic(), _Gemini()


def _wire_for(path: str) -> _Wire | None:
    if path == "/v1/chat/completions":
        return OPENAI
    if path == "/v1/messages":
        return ANTHROPIC
    if path.startswith("/v1beta/models/") and path.endswith(":streamGenerateContent"):
        return GEMINI
    return None


class FakeUpstream:
    def __init__(self) -> None:
        self.base_url = ""
        self.script = steady(3)
        self.scripts_by_model: dict[str, Script] = {}
        self.answers: list[Script] = []
        self.requests: list[RecordedRequest] = []

    def use(self, script: Script) -> None:
        """Play `script` from now on, forgetting the requests recorded so far."""
        self.script = script
        self.requests = []

    def use_for(self, model: str, script: Script) -> None:
        """Play `script` for requests naming this upstream model (OpenAI and Anthropic bodies, Gemini paths)."""
        self.scripts_by_model[model] = script

    def _script_for(self, record: "RecordedRequest") -> Script:
        """The next queued answer if any, else the model's script, else the default one."""
        if self.answers:
            return self.answers.pop(0)
        model = record.body.get("model") or record.path.removeprefix("/v1beta/models/").partition(":")[0]
        return self.scripts_by_model.get(str(model), self.script)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = await _read_body(receive)
        record = RecordedRequest(
            path=scope["path"],
            query=scope["query_string"].decode(),
            headers={name.decode(): value.decode() for name, value in scope["headers"]},
            body=json.loads(body) if body else {},
            client_port=scope["client"][1] if scope.get("client") else None,
        )
        self.requests.append(record)
        script, wire = self._script_for(record), _wire_for(record.path)
        if wire is None:
            await _send_json(send, 404, {"error": "no such route"})
        elif script.status != 200:
            extra = [] if script.retry_after is None else [(b"retry-after", str(script.retry_after).encode())]
            await _send_json(send, script.status, wire.error(script.status), extra)
        elif wire is OPENAI and not record.body.get("stream"):
            await _send_json(send, 200, _openai_completion(script))
        else:
            await _stream(script, wire, receive, send, record)


async def _stream(script: Script, wire: _Wire, receive: Receive, send: Send, record: RecordedRequest) -> None:
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, record, gone))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    try:
        await _play(script, wire, send, record, gone)
    finally:
        watcher.cancel()


async def _play(script: Script, wire: _Wire, send: Send, record: RecordedRequest, gone: asyncio.Event) -> None:
    async def body(chunk: bytes, more: bool = True) -> None:
        record.completed = not more
        await send({"type": "http.response.body", "body": chunk, "more_body": more})

    if script.raw_lines is not None:
        await body("".join(f"{line}\n" for line in script.raw_lines).encode(), more=False)
        return
    await body(b"".join(wire.opening(script.usage)))
    for text in script.texts:
        await asyncio.sleep(script.delay_s)
        if gone.is_set():
            return
        await body(wire.delta(text))
        record.chunks_sent += 1
    match script.ending:
        case "complete":
            await body(b"".join(wire.closing(script.usage)), more=False)
        case "truncated":
            await body(b"", more=False)
        case "stall":
            await gone.wait()
        case "abort":
            return  # uvicorn closes a connection whose response the app left unfinished


async def _watch_disconnect(receive: Receive, record: RecordedRequest, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    if not record.completed:  # uvicorn also answers http.disconnect once the response is complete
        record.disconnected_at = time.monotonic()
    gone.set()


def _openai_completion(script: Script) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": script.text}, "finish_reason": "stop"}],
        "usage": _OpenAI.usage(script.usage or (0, 0)),
    }


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: object, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@asynccontextmanager
async def serve_fake_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    async with serve_on_loopback(upstream) as url:
        upstream.base_url = url
        yield upstream
