"""Gemini streamGenerateContent (SSE).

Translated: system messages to `systemInstruction`, images to `inlineData` parts, tool calls to `functionCall` parts
and tool messages to `functionResponse` parts (named after the call they answer), `tools` to `functionDeclarations`
(JSON Schema as `parametersJsonSchema`), `tool_choice` to `toolConfig.functionCallingConfig`, JSON output to
`responseMimeType` (and `responseJsonSchema`), `stop`, `top_p` and `seed` to their `generationConfig` fields. Not
honoured: images by URL (Gemini fetches none), an image's `detail`, and `parallel_tool_calls: false`. Gemini sends
each call whole, with no id unless it has one: the adapter gives it one."""

import uuid
from collections.abc import Iterator, Sequence
from urllib.parse import quote

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
from domain.errors import UpstreamError

_UNSUPPORTED: frozenset[Parameter] = frozenset({"image_urls", "image_detail"})
_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


class _FunctionCall(msgspec.Struct):
    name: str = ""
    args: dict[str, object] = {}
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content = msgspec.field(default_factory=_Content)
    finish_reason: str | None = None


class _UsageMetadata(msgspec.Struct, rename="camel"):
    """`promptTokenCount` includes `cachedContentTokenCount`; thinking tokens (`thoughtsTokenCount`) are apart
    from `candidatesTokenCount`."""

    prompt_token_count: object = None
    cached_content_token_count: object = None
    candidates_token_count: object = None
    thoughts_token_count: object = None


class _Chunk(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    error: object = None


_DECODER = msgspec.json.Decoder(_Chunk)


class GeminiProvider(SseProvider):
    """`base_url` is the host; the adapter adds /v1beta/models/{model}:streamGenerateContent?alt=sse."""

    vendor = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"

    def unsupported(self, request: CompletionRequest) -> Parameter | None:
        if request.options.parallel_tool_calls is False:
            return "parallel_tool_calls"
        return next((name for name in request.parameters() if name in _UNSUPPORTED), None)

    def _url(self, request: CompletionRequest) -> str:
        model = quote(request.upstream_model, safe="")
        return f"{self._base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"

    def _auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._required_key()}

    def _body(self, request: CompletionRequest) -> dict[str, object]:
        system, chat = split_system(request.messages)
        body: dict[str, object] = {
            "contents": list(_contents(chat)),
            "generationConfig": _generation_config(request),
        }
        if system is not None:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body | _tools(request.options)

    def _reader(self, request: CompletionRequest) -> WireReader:
        return _GeminiReader()


def _contents(chat: Sequence[ChatMessage]) -> Iterator[dict[str, object]]:
    names = {call.id: call.name for message in chat for call in message.tool_calls}
    responses: list[dict[str, object]] = []
    for message in chat:
        if message.role == "tool":
            name = names.get(message.tool_call_id or "", "")
            responses.append({"functionResponse": {"name": name, "response": _response(message.text)}})
            continue
        if responses:
            yield {"role": "user", "parts": responses}
            responses = []
        parts: list[dict[str, object]] = [_part(part) for part in message.parts]
        parts += [
            {"functionCall": {"name": call.name, "args": msgspec.json.decode(call.arguments)}}
            for call in message.tool_calls
        ]
        yield {"role": "model" if message.role == "assistant" else "user", "parts": parts or [{"text": ""}]}
    if responses:
        yield {"role": "user", "parts": responses}


def _response(text: str) -> object:
    """A tool's JSON object answer as it is, any other answer as `{"content": text}` (Gemini takes objects)."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


def _part(part: TextPart | ImagePart) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    media_type, data = part.inline or ("", "")  # an image by URL is refused before (unsupported)
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _generation_config(request: CompletionRequest) -> dict[str, object]:
    options = request.options
    config: dict[str, object] = {"maxOutputTokens": request.max_tokens}
    if options.temperature is not None:
        config["temperature"] = options.temperature
    if options.top_p is not None:
        config["topP"] = options.top_p
    if options.stop:
        config["stopSequences"] = list(options.stop)
    if options.seed is not None:
        config["seed"] = options.seed
    if options.json_output is not None:
        config["responseMimeType"] = "application/json"
        if options.json_output.schema is not None:
            config["responseJsonSchema"] = options.json_output.schema.schema
    return config


def _tools(options: CompletionOptions) -> dict[str, object]:
    wire: dict[str, object] = {}
    if options.tools:
        declarations = [
            {"name": tool.name, **({"description": tool.description} if tool.description else {}),
             "parametersJsonSchema": tool.parameters}
            for tool in options.tools
        ]  # fmt: skip
        wire["tools"] = [{"functionDeclarations": declarations}]
    choice = options.tool_choice
    if isinstance(choice, NamedTool):
        wire["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.name]}}
    elif choice is not None:
        wire["toolConfig"] = {"functionCallingConfig": {"mode": _MODES[choice]}}
    return wire


class _GeminiReader(WireReader):
    def __init__(self) -> None:
        super().__init__()
        self._calls = 0

    def read(self, data: bytes) -> list[str | ToolCallDelta]:
        chunk = decode_payload(_DECODER, data, GeminiProvider.vendor)
        if chunk.error is not None:
            raise UpstreamError("gemini reported an error mid-stream.")
        if (usage := chunk.usage_metadata) is not None:
            self.usage = _usage(usage)
        if not chunk.candidates:
            return []
        candidate = chunk.candidates[0]
        self.finished = self.finished or candidate.finish_reason is not None
        pieces: list[str | ToolCallDelta] = []
        for part in candidate.content.parts:
            if part.text:
                pieces.append(part.text)
            if (call := part.function_call) is not None:
                call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
                pieces.append(ToolCallDelta(self._calls, msgspec.json.encode(call.args).decode(), call_id, call.name))
                self._calls += 1
        return pieces


def _usage(usage: _UsageMetadata) -> UsageReport | None:
    answer, thoughts = token_count(usage.candidates_token_count), token_count(usage.thoughts_token_count, absent=0)
    if answer is None or thoughts is None:
        return None
    return plausible_usage(
        usage.prompt_token_count,
        answer + thoughts,
        cached_input_tokens=usage.cached_content_token_count,
        reasoning_tokens=thoughts,
    )
