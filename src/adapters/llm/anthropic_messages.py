"""Anthropic Messages API.

Translated: system messages to `system`, images to image blocks (base64 or url source), tool calls to `tool_use`
blocks and tool messages to `tool_result` blocks (consecutive ones in one user turn), `tools` with their
`input_schema`, `tool_choice` (`required` is `any`; `parallel_tool_calls: false` is `disable_parallel_tool_use`),
`stop` to `stop_sequences`. JSON output is Anthropic's documented forced-tool pattern: one tool whose input schema is
the answer's, which the model must call; its input is relayed as the answer's text. Not honoured: `seed`, an image's
`detail`, and JSON output together with tools."""

from collections.abc import Iterator, Sequence

import msgspec

from adapters.llm.sse_lines import (
    SseProvider,
    WireReader,
    decode_payload,
    plausible_usage,
    split_system,
    token_count,
)
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    ImagePart,
    NamedTool,
    Parameter,
    TextPart,
    ToolCallDelta,
    UsageReport,
)
from domain.errors import ProviderUnavailable, UpstreamError
from domain.routing import Failure

API_VERSION = "2023-06-01"
JSON_TOOL = "json_answer"
_UNSUPPORTED: frozenset[Parameter] = frozenset({"seed", "image_detail"})


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
    partial_json: str | None = None


class _Block(msgspec.Struct):
    type: str = ""
    id: str | None = None
    name: str | None = None


class _Error(msgspec.Struct):
    type: str = ""


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error = msgspec.field(default_factory=_Error)


_DECODER = msgspec.json.Decoder(_Event)


class AnthropicMessagesProvider(SseProvider):
    """`base_url` is the host (https://api.anthropic.com); the adapter adds /v1/messages."""

    vendor = "anthropic"
    default_base_url = "https://api.anthropic.com"

    def unsupported(self, request: CompletionRequest) -> Parameter | None:
        used = request.parameters()
        if "response_format" in used and "tools" in used:
            return "response_format"
        return next((name for name in used if name in _UNSUPPORTED), None)

    def _url(self, request: CompletionRequest) -> str:
        return f"{self._base_url}/v1/messages"

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._required_key(), "anthropic-version": API_VERSION}

    def _body(self, request: CompletionRequest) -> dict[str, object]:
        system, chat = split_system(request.messages)
        body: dict[str, object] = {
            "model": request.upstream_model,
            "max_tokens": request.max_tokens,
            "messages": list(_messages(chat)),
            "stream": True,
        }
        if system is not None:
            body["system"] = system
        return body | _options(request.options)

    def _reader(self, request: CompletionRequest) -> WireReader:
        return _AnthropicReader(json_tool=request.options.json_output is not None)


def _messages(chat: Sequence[ChatMessage]) -> Iterator[dict[str, object]]:
    results: list[dict[str, object]] = []
    for message in chat:
        if message.role == "tool":
            results.append({"type": "tool_result", "tool_use_id": message.tool_call_id, "content": _content(message)})
            continue
        if results:
            yield {"role": "user", "content": results}
            results = []
        if message.tool_calls:
            uses = [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": msgspec.json.decode(call.arguments)}
                for call in message.tool_calls
            ]
            yield {"role": message.role, "content": [*_blocks(message), *uses]}
        else:
            yield {"role": message.role, "content": _content(message)}
    if results:
        yield {"role": "user", "content": results}


def _content(message: ChatMessage) -> str | list[dict[str, object]]:
    return message.content if isinstance(message.content, str) else _blocks(message)


def _blocks(message: ChatMessage) -> list[dict[str, object]]:
    return [_block(part) for part in message.parts]


def _block(part: TextPart | ImagePart) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    inline = part.inline
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    media_type, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _options(options: CompletionOptions) -> dict[str, object]:
    wire: dict[str, object] = {}
    if options.temperature is not None:
        wire["temperature"] = options.temperature
    if options.top_p is not None:
        wire["top_p"] = options.top_p
    if options.stop:
        wire["stop_sequences"] = list(options.stop)
    tools = [
        {
            "name": tool.name,
            **({"description": tool.description} if tool.description else {}),
            "input_schema": tool.parameters,
        }
        for tool in options.tools
    ]
    choice: dict[str, object] | None = None
    if isinstance(options.tool_choice, NamedTool):
        choice = {"type": "tool", "name": options.tool_choice.name}
    elif options.tool_choice is not None:
        choice = {"type": "any" if options.tool_choice == "required" else options.tool_choice}
    if options.parallel_tool_calls is False:
        choice = (choice or {"type": "auto"}) | {"disable_parallel_tool_use": True}
    if options.json_output is not None:
        schema = options.json_output.schema
        input_schema = dict(schema.schema) if schema is not None else {"type": "object"}
        tools = [{"name": JSON_TOOL, "description": "Answer with this JSON.", "input_schema": input_schema}]
        choice = {"type": "tool", "name": JSON_TOOL}
    if tools:
        wire["tools"] = tools
    if choice is not None:
        wire["tool_choice"] = choice
    return wire


class _AnthropicReader(WireReader):
    """Tool calls are numbered in the order their blocks start (OpenAI's `index`), whatever the block index."""

    def __init__(self, *, json_tool: bool) -> None:
        super().__init__()
        self._json_tool = json_tool
        self._usage = _Usage()
        self._produced = False
        self._calls: dict[int, int] = {}  # block index -> tool call index
        self._called_with: set[int] = set()  # blocks whose input came in non-empty fragments

    def read(self, data: bytes) -> list[str | ToolCallDelta]:
        event = decode_payload(_DECODER, data, AnthropicMessagesProvider.vendor)
        match event.type:
            case "message_start" if event.message is not None:
                self._record(event.message.usage)
            case "content_block_start" if event.content_block is not None and event.content_block.type == "tool_use":
                return self._tool_use(event.index, event.content_block)
            case "content_block_delta" if event.delta is not None:
                return self._delta(event.index, event.delta)
            case "content_block_stop" if event.index in self._calls and event.index not in self._called_with:
                return self._text_or_call(event.index, "{}")  # a call without arguments
            case "message_delta" if event.usage is not None:
                self._record(event.usage)
            case "message_stop":
                self.finished = True
                self.usage = _usage(self._usage)
            case "error":
                raise self._error(event.error.type)
        return []

    def _tool_use(self, index: int, block: _Block) -> list[str | ToolCallDelta]:
        self._calls[index] = len(self._calls)
        self._produced = True
        if self._json_tool:
            return []
        return [ToolCallDelta(self._calls[index], "", id=block.id, name=block.name)]

    def _delta(self, index: int, delta: _Delta) -> list[str | ToolCallDelta]:
        if delta.type == "text_delta" and delta.text:
            self._produced = True
            return [delta.text]
        if delta.type == "input_json_delta" and delta.partial_json and index in self._calls:
            self._called_with.add(index)
            return self._text_or_call(index, delta.partial_json)
        return []

    def _text_or_call(self, index: int, arguments: str) -> list[str | ToolCallDelta]:
        return [arguments if self._json_tool else ToolCallDelta(self._calls[index], arguments)]

    def _record(self, usage: _Usage) -> None:
        """The latest value of each count wins; one an event leaves out keeps what an earlier event said."""
        reported = {name: count for name, count in msgspec.structs.asdict(usage).items() if count is not None}
        self._usage = msgspec.structs.replace(self._usage, **reported)

    def _error(self, kind: str) -> UpstreamError | ProviderUnavailable:
        if kind == "overloaded_error" and not self._produced:
            return ProviderUnavailable("anthropic is overloaded.", failure=Failure.SERVER_ERROR)
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
