"""OpenAI Chat Completions (also OpenRouter, vLLM, Ollama, llama.cpp server, LM Studio, DeepSeek, ...).

Every parameter of the port is an OpenAI one, so all pass through, except those the server is known not to honour
(`refuses`): llama-server, for one, silently ignores tools when its model's chat template has none, and answers 500
to images without a vision projector."""

from typing import Self

import httpx
import msgspec

from adapters.llm.sse_lines import SseProvider, WireReader, decode_payload, plausible_usage
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    ImagePart,
    NamedTool,
    Parameter,
    TextPart,
    TokenCounter,
    ToolCallDelta,
)
from domain.errors import UpstreamError


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function = msgspec.field(default_factory=_Function)


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta = msgspec.field(default_factory=_Delta)
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: object = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: object = None


class _Usage(msgspec.Struct):
    """`prompt_tokens` includes the cached ones, `completion_tokens` the reasoning ones."""

    prompt_tokens: object = None
    completion_tokens: object = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: object = None


_DECODER = msgspec.json.Decoder(_Chunk)


class OpenAIChatProvider(SseProvider):
    """`base_url` ends with /v1; without an API key no Authorization header is sent (local servers)."""

    vendor = "openai"
    default_base_url = "https://api.openai.com/v1"

    @classmethod
    def local(
        cls,
        client: httpx.AsyncClient,
        counter: TokenCounter,
        *,
        base_url: str | None,
        api_key: str | None,
        refuses: frozenset[Parameter],
    ) -> Self | None:
        """Provider `local`: the sidecar `serve` started, only where one is named (other local servers: `openai`)."""
        return cls(client, base_url, api_key, counter, refuses) if base_url else None

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        counter: TokenCounter,
        refuses: frozenset[Parameter] = frozenset(),
    ) -> None:
        super().__init__(client, base_url, api_key, counter)
        self._refuses = refuses

    def unsupported(self, request: CompletionRequest) -> Parameter | None:
        return next((name for name in request.parameters() if name in self._refuses), None)

    def _url(self, request: CompletionRequest) -> str:
        return f"{self._base_url}/chat/completions"

    def _auth_headers(self) -> dict[str, str]:
        return {} if self._api_key is None else {"authorization": f"Bearer {self._api_key}"}

    def _body(self, request: CompletionRequest) -> dict[str, object]:
        body: dict[str, object] = {
            "model": request.upstream_model,
            "messages": [_message(message) for message in request.messages],
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        return body | _options(request.options)

    def _reader(self, request: CompletionRequest) -> WireReader:
        return _OpenAIReader()


def _message(message: ChatMessage) -> dict[str, object]:
    wire: dict[str, object] = {"role": message.role, "content": _content(message)}
    if message.tool_calls:
        wire["content"] = message.text or None
        wire["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _content(message: ChatMessage) -> str | list[dict[str, object]]:
    if isinstance(message.content, str):
        return message.content
    return [_part(part) for part in message.content]


def _part(part: TextPart | ImagePart) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, object] = {"url": part.url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _options(options: CompletionOptions) -> dict[str, object]:
    wire: dict[str, object] = {}
    for name in ("temperature", "top_p", "seed", "parallel_tool_calls"):
        if (value := getattr(options, name)) is not None:
            wire[name] = value
    if options.stop:
        wire["stop"] = list(options.stop)
    if options.tools:
        wire["tools"] = [
            {"type": "function", "function": _without_none(msgspec.to_builtins(tool))} for tool in options.tools
        ]
    if isinstance(options.tool_choice, NamedTool):
        wire["tool_choice"] = {"type": "function", "function": {"name": options.tool_choice.name}}
    elif options.tool_choice is not None:
        wire["tool_choice"] = options.tool_choice
    if options.json_output is not None:
        schema = options.json_output.schema
        if schema is None:
            wire["response_format"] = {"type": "json_object"}
        else:
            wire["response_format"] = {"type": "json_schema", "json_schema": _without_none(msgspec.to_builtins(schema))}
    return wire


def _without_none(fields: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not None}


class _OpenAIReader(WireReader):
    def read(self, data: bytes) -> list[str | ToolCallDelta]:
        chunk = decode_payload(_DECODER, data, OpenAIChatProvider.vendor)
        if chunk.error is not None:
            raise UpstreamError("openai reported an error mid-stream.")
        if (usage := chunk.usage) is not None:
            prompt, completion = usage.prompt_tokens_details, usage.completion_tokens_details
            self.usage = plausible_usage(
                usage.prompt_tokens,
                usage.completion_tokens,
                cached_input_tokens=None if prompt is None else prompt.cached_tokens,
                reasoning_tokens=None if completion is None else completion.reasoning_tokens,
            )
        if not chunk.choices:
            return []
        choice = chunk.choices[0]
        self.finished = self.finished or choice.finish_reason is not None
        pieces: list[str | ToolCallDelta] = [choice.delta.content] if choice.delta.content else []
        for call in choice.delta.tool_calls or ():
            function = call.function
            pieces.append(ToolCallDelta(call.index, function.arguments or "", id=call.id, name=function.name))
        return pieces
