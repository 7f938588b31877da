"""What the three HTTP adapters share: opening the upstream stream with bounded retries, mapping its failures,
and reading the `data:` payloads of its SSE body."""

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from datetime import timedelta
from typing import ClassVar, Self, TypeVar

import httpx
import msgspec

from adapters.llm.token_counter import counter_for_model
from application.ports.llm import (
    ChatMessage,
    CompletionRequest,
    LLMProvider,
    StreamEvent,
    TextDelta,
    TokenCounter,
    ToolCallDelta,
    UsageReport,
)
from domain.errors import DomainError, ProviderUnavailable, UpstreamError
from domain.routing import Failure

MAX_LINE_BYTES = 1 << 20
MAX_PLAUSIBLE_TOKENS = 10_000_000
RETRY_DELAYS_S = (0.1, 0.3)
DRAIN_TIMEOUT_S = 0.5
OVERLOADED_STATUSES = frozenset({429, 503, 529})  # 529: Anthropic's "overloaded"
CREDENTIAL_STATUSES = frozenset({401, 403})

ChunkT = TypeVar("ChunkT")


class WireReader(ABC):
    """Reads one stream's payloads in one vendor's format; a fresh reader per stream."""

    def __init__(self) -> None:
        self.finished = False  # the vendor's end-of-answer marker was seen; without it the stream was cut off
        self.usage: UsageReport | None = None

    @abstractmethod
    def read(self, data: bytes) -> Sequence[str | ToolCallDelta]:
        """The text and tool-call pieces one `data:` payload carries (often none); raises on an error payload."""


class SseProvider(LLMProvider):
    """An LLMProvider over a vendor's streaming HTTP API; subclasses state the URL, headers, body and wire format."""

    vendor: ClassVar[str]
    default_base_url: ClassVar[str]
    """The vendor's own endpoint, used unless a base URL names another (a proxy, a compatible server)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, api_key: str | None, counter: TokenCounter) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._counter = counter

    @classmethod
    def configured(
        cls, client: httpx.AsyncClient, counter: TokenCounter, *, api_key: str | None, base_url: str | None
    ) -> Self | None:
        """The vendor serves once its API key or a base URL is set; None leaves it unconfigured."""
        if not (api_key or base_url):
            return None
        return cls(client, base_url or cls.default_base_url, api_key, counter)

    @property
    def token_counter(self) -> TokenCounter:
        return self._counter

    def counter_for(self, upstream_model: str) -> TokenCounter:
        return counter_for_model(upstream_model, fallback=self._counter)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        upstream_request = self._client.build_request(
            "POST",
            self._url(request),
            headers={"content-type": "application/json", "accept": "text/event-stream", **self._auth_headers()},
            content=msgspec.json.encode(self._body(request)),
        )
        reader = self._reader(request)
        response = await _open(self._client, upstream_request, self.vendor, patient=request.retry_unavailable)
        try:
            async with aclosing(_data_payloads(response, self.vendor)) as payloads:
                async for data in payloads:
                    for piece in reader.read(data):
                        yield TextDelta(piece) if isinstance(piece, str) else piece
        except httpx.TimeoutException as exc:
            raise UpstreamError(
                f"{self.vendor} stalled for longer than the read timeout.", failure=Failure.TIMEOUT
            ) from exc
        except httpx.RequestError as exc:
            raise UpstreamError(f"{self.vendor} broke off the stream.", failure=Failure.CONNECT) from exc
        finally:
            await response.aclose()
        if not reader.finished:
            raise UpstreamError(f"{self.vendor} ended the stream before its end marker.", failure=Failure.BROKEN)
        if reader.usage is not None:
            yield reader.usage

    def _required_key(self) -> str:
        if self._api_key is None:
            raise ProviderUnavailable(f"provider {self.vendor!r} is not configured (no API key).")
        return self._api_key

    @abstractmethod
    def _url(self, request: CompletionRequest) -> str: ...

    @abstractmethod
    def _auth_headers(self) -> dict[str, str]: ...

    @abstractmethod
    def _body(self, request: CompletionRequest) -> dict[str, object]: ...

    @abstractmethod
    def _reader(self, request: CompletionRequest) -> WireReader: ...


class _ClosedBeforeAnswering(ProviderUnavailable):
    """No byte of a response: typically a pooled keep-alive connection the server had already closed (llama-server
    closes after a stream); a fresh connection is likely to be answered."""


async def _open(client: httpx.AsyncClient, request: httpx.Request, vendor: str, *, patient: bool) -> httpx.Response:
    """Retries happen only here, before any byte of the answer was read: never once a delta was yielded. Patient:
    an unavailable upstream is asked again after each of RETRY_DELAYS_S. Impatient (another deployment waits): only
    a connection closed before answering is tried again, at once, so that it counts against no breaker."""
    if not patient:
        try:
            return await _send(client, request, vendor)
        except _ClosedBeforeAnswering:
            return await _send(client, request, vendor)
    for delay in RETRY_DELAYS_S:
        try:
            return await _send(client, request, vendor)
        except ProviderUnavailable:
            await asyncio.sleep(delay)
    return await _send(client, request, vendor)


async def _send(client: httpx.AsyncClient, request: httpx.Request, vendor: str) -> httpx.Response:
    try:
        response = await client.send(request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ProviderUnavailable(f"{vendor} cannot be reached.", failure=Failure.CONNECT) from exc
    except httpx.RemoteProtocolError as exc:
        raise _ClosedBeforeAnswering(
            f"{vendor} closed the connection before answering.", failure=Failure.CONNECT
        ) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamError(f"{vendor} did not answer in time.", failure=Failure.TIMEOUT) from exc
    except httpx.RequestError as exc:
        raise UpstreamError(f"{vendor} did not answer.", failure=Failure.CONNECT) from exc
    if response.is_success:
        return response
    await response.aclose()
    raise _status_error(vendor, response.status_code, response.headers.get("retry-after"))


def _status_error(vendor: str, status: int, retry_after: str | None) -> DomainError:
    failure = Failure.SERVER_ERROR if status >= 500 else Failure.CLIENT_ERROR
    if status == 429:
        return ProviderUnavailable(
            f"{vendor} is rate limiting (HTTP 429).", failure=Failure.RATE_LIMITED, retry_after=_delay(retry_after)
        )
    if status in OVERLOADED_STATUSES:
        return ProviderUnavailable(f"{vendor} is overloaded (HTTP {status}).", failure=failure)
    if status in CREDENTIAL_STATUSES:
        return UpstreamError(f"{vendor} rejected the gateway's upstream credentials (HTTP {status}).", failure=failure)
    return UpstreamError(f"{vendor} answered HTTP {status}.", failure=failure)


def _delay(retry_after: str | None) -> timedelta | None:
    """`Retry-After` in seconds (its HTTP-date form is rare from APIs and ignored)."""
    if retry_after is None or not retry_after.strip().isdigit():
        return None
    return timedelta(seconds=int(retry_after))


async def _data_payloads(response: httpx.Response, vendor: str) -> AsyncGenerator[bytes, None]:
    """The value of each `data:` line until `[DONE]`; other SSE fields, comments and blank lines mean nothing here.

    Every vendor puts one JSON document on one `data:` line, so lines are not joined into multi-line events.
    """
    async with aclosing(_lines(response, vendor)) as lines:
        async for line in lines:
            if not line.startswith(b"data:"):
                continue
            data = line.removeprefix(b"data:").removeprefix(b" ")
            if data == b"[DONE]":
                await _drain(lines)
                return
            yield data


async def _drain(lines: AsyncGenerator[bytes, None]) -> None:
    """Read the body's end after `[DONE]` (it comes in the same packet), so the connection goes back to the pool
    instead of being closed: without it every generation paid a new TCP (and TLS) connection to the provider."""
    with contextlib.suppress(TimeoutError, UpstreamError, httpx.RequestError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in lines:
                pass


async def _lines(response: httpx.Response, vendor: str) -> AsyncGenerator[bytes, None]:
    """Lines of the body, refusing to buffer one longer than MAX_LINE_BYTES (httpx's aiter_lines has no bound)."""
    pending = b""
    async for chunk in response.aiter_bytes():
        *lines, pending = (pending + chunk).split(b"\n")
        for line in (*lines, pending):
            if len(line) > MAX_LINE_BYTES:
                raise UpstreamError(f"{vendor} sent a line longer than {MAX_LINE_BYTES} bytes.", failure=Failure.BROKEN)
        for line in lines:
            yield line.removesuffix(b"\r")
    if pending:
        yield pending.removesuffix(b"\r")


def decode_payload(decoder: msgspec.json.Decoder[ChunkT], data: bytes, vendor: str) -> ChunkT:
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise UpstreamError(f"{vendor} sent a payload that is not a valid JSON event.", failure=Failure.BROKEN) from exc


def plausible_usage(
    input_tokens: object,
    output_tokens: object,
    *,
    cached_input_tokens: object = None,
    cache_write_tokens: object = None,
    reasoning_tokens: object = None,
) -> UsageReport | None:
    """The vendor's counts (an absent detail is 0), or None when one is not a sane token count or a part exceeds
    the total it is part of: the caller then counts itself, as a report that contradicts itself is not trusted."""
    totals = (token_count(count) for count in (input_tokens, output_tokens))
    details = (token_count(count, absent=0) for count in (cached_input_tokens, cache_write_tokens, reasoning_tokens))
    match [*totals, *details]:
        case [int(prompt), int(answer), int(cached), int(written), int(reasoning)] if (
            cached + written <= prompt and reasoning <= answer
        ):
            return UsageReport(prompt, answer, cached, written, reasoning)
    return None


def token_count(value: object, *, absent: int | None = None) -> int | None:
    """`value` if it is a sane token count, `absent` if the vendor left it out, None otherwise."""
    if value is None:
        return absent
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PLAUSIBLE_TOKENS:
        return None
    return value


def split_system(messages: Sequence[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    """System messages joined into one instruction, for vendors that take it apart from the chat."""
    system = [message.text for message in messages if message.role == "system"]
    chat = [message for message in messages if message.role != "system"]
    return ("\n\n".join(system) if system else None), chat
