"""Anthropic Messages API."""

import msgspec

from adapters.llm.sse_lines import (
    SseProvider,
    WireReader,
    decode_payload,
    plausible_usage,
    split_system,
    token_count,
)
from application.ports.llm import CompletionRequest, UsageReport
from domain.errors import ProviderUnavailable, UpstreamError

API_VERSION = "2023-06-01"


class _Usage(msgspec.Struct):
    """`input_tokens` are the prompt tokens neither read from nor written to the cache. `message_start` carries
    the prompt's counts; `message_delta` the output's, and repeats the prompt's in newer API versions."""

    input_tokens: object = None
    cache_read_input_tokens: object = None
    cache_creation_input_tokens: object = None
    output_tokens: object = None


class _Message(msgspec.Struct):
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None


class _Error(msgspec.Struct):
    type: str = ""


class _Event(msgspec.Struct):
    type: str
    message: _Message | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error = msgspec.field(default_factory=_Error)


_DECODER = msgspec.json.Decoder(_Event)


class AnthropicMessagesProvider(SseProvider):
    """`base_url` is the host (https://api.anthropic.com); the adapter adds /v1/messages."""

    vendor = "anthropic"

    def _url(self, request: CompletionRequest) -> str:
        return f"{self._base_url}/v1/messages"

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._required_key(), "anthropic-version": API_VERSION}

    def _body(self, request: CompletionRequest) -> dict[str, object]:
        system, chat = split_system(request.messages)
        body: dict[str, object] = {
            "model": request.upstream_model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": message.role, "content": message.content} for message in chat],
            "stream": True,
        }
        if system is not None:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _reader(self) -> WireReader:
        return _AnthropicReader()


class _AnthropicReader(WireReader):
    def __init__(self) -> None:
        super().__init__()
        self._usage = _Usage()
        self._produced_text = False

    def read(self, data: bytes) -> str:
        event = decode_payload(_DECODER, data, AnthropicMessagesProvider.vendor)
        match event.type:
            case "message_start" if event.message is not None:
                self._record(event.message.usage)
            case "content_block_delta" if event.delta is not None and event.delta.type == "text_delta":
                self._produced_text = self._produced_text or bool(event.delta.text)
                return event.delta.text or ""
            case "message_delta" if event.usage is not None:
                self._record(event.usage)
            case "message_stop":
                self.finished = True
                self.usage = _usage(self._usage)
            case "error":
                raise self._error(event.error.type)
        return ""

    def _record(self, usage: _Usage) -> None:
        """The latest value of each count wins; one an event leaves out keeps what an earlier event said."""
        reported = {name: count for name, count in msgspec.structs.asdict(usage).items() if count is not None}
        self._usage = msgspec.structs.replace(self._usage, **reported)

    def _error(self, kind: str) -> UpstreamError | ProviderUnavailable:
        if kind == "overloaded_error" and not self._produced_text:
            return ProviderUnavailable("anthropic is overloaded.")
        return UpstreamError(f"anthropic reported {kind or 'an error'} mid-stream.")


def _usage(usage: _Usage) -> UsageReport | None:
    """Anthropic reports the prompt in three parts; creditgate's `input_tokens` is their sum."""
    parts = (usage.cache_read_input_tokens, usage.cache_creation_input_tokens)
    match [token_count(usage.input_tokens), *(token_count(part, absent=0) for part in parts)]:
        case [int(uncached), int(read), int(written)]:
            return plausible_usage(
                uncached + read + written, usage.output_tokens, cached_input_tokens=read, cache_write_tokens=written
            )
    return None
