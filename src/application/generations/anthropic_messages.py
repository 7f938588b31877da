"""The Anthropic Messages surface over the same generation use case: same auth, same billing.

Anthropic's blocks map onto the vendor-neutral chat of the provider port: `tool_use` blocks become the assistant
message's tool calls, each `tool_result` block a `tool` message (before the rest of its user message), image blocks
image parts (a base64 source as a `data:` URL)."""

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from application.generations.run import GenerationRun, Outcome, Started
from application.generations.start import Order, StartGeneration
from application.generations.views import MAX_MESSAGES
from application.patterns import HTTP_URL, TOOL_NAME
from application.ports.catalog import ModelLookup
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    ContentPart,
    ImagePart,
    NamedTool,
    ProviderRegistry,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    prompt_tokens,
)
from application.ports.security import IdentityProvider
from domain.catalog import ModelNotFound
from domain.errors import InvalidInput, UnsupportedParameter

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]
ToolName = Annotated[str, msgspec.Meta(pattern=TOOL_NAME)]
ToolUseId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 16
TOOL_ERROR_PREFIX = "Error: "


class TextBlockParam(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    """Other fields of a block (`cache_control`, `citations`) are accepted and have no effect."""

    text: str

    example: ClassVar[dict[str, Any]] = {"type": "text", "text": "Name three uses of a paperclip."}


class TextOnlyBlockParam(msgspec.Struct, frozen=True):
    """A text block where only text may come (the system prompt, a tool result's content)."""

    type: Literal["text"]
    text: str

    example: ClassVar[dict[str, Any]] = {"type": "text", "text": "You are a concise assistant."}


class Base64ImageSource(msgspec.Struct, frozen=True, tag="base64", tag_field="type"):
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str

    example: ClassVar[dict[str, Any]] = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


class URLImageSource(msgspec.Struct, frozen=True, tag="url", tag_field="type"):
    url: Annotated[str, msgspec.Meta(pattern=HTTP_URL)]

    example: ClassVar[dict[str, Any]] = {"type": "url", "url": "https://example.com/paperclip.png"}


class ImageBlockParam(msgspec.Struct, frozen=True, tag="image", tag_field="type"):
    source: Base64ImageSource | URLImageSource

    example: ClassVar[dict[str, Any]] = {"type": "image", "source": URLImageSource.example}


class ToolUseBlockParam(msgspec.Struct, frozen=True, tag="tool_use", tag_field="type"):
    """A call the assistant made (in an assistant message)."""

    id: ToolUseId
    name: ToolName
    input: dict[str, Any]

    example: ClassVar[dict[str, Any]] = {
        "type": "tool_use",
        "id": "toolu_01A09q90qw90lq917835lq9",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }


class ToolResultBlockParam(msgspec.Struct, frozen=True, tag="tool_result", tag_field="type", kw_only=True):
    """The answer to a call (in a user message), as text; `is_error` prefixes it with `Error: ` for the model."""

    tool_use_id: ToolUseId
    content: str | list[TextOnlyBlockParam] = ""
    is_error: bool = False

    example: ClassVar[dict[str, Any]] = {
        "type": "tool_result",
        "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
        "content": "18 °C, light rain",
    }


ContentBlockParam = TextBlockParam | ImageBlockParam | ToolUseBlockParam | ToolResultBlockParam


class MessageParam(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockParam]

    example: ClassVar[dict[str, Any]] = {"role": "user", "content": [TextBlockParam.example]}


class ToolParam(msgspec.Struct, frozen=True, kw_only=True):
    """A client tool; `input_schema` is the JSON Schema of its input (an object)."""

    name: ToolName
    input_schema: dict[str, Any]
    description: str | None = None
    type: Literal["custom"] | None = None

    example: ClassVar[dict[str, Any]] = {
        "name": "get_weather",
        "description": "The current weather of a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }


class ToolChoiceAuto(msgspec.Struct, frozen=True, tag="auto", tag_field="type"):
    disable_parallel_tool_use: bool | None = None

    example: ClassVar[dict[str, Any]] = {"type": "auto"}


class ToolChoiceAny(msgspec.Struct, frozen=True, tag="any", tag_field="type"):
    disable_parallel_tool_use: bool | None = None

    example: ClassVar[dict[str, Any]] = {"type": "any"}


class ToolChoiceTool(msgspec.Struct, frozen=True, tag="tool", tag_field="type", kw_only=True):
    name: ToolName
    disable_parallel_tool_use: bool | None = None

    example: ClassVar[dict[str, Any]] = {"type": "tool", "name": "get_weather"}


class ToolChoiceNone(msgspec.Struct, frozen=True, tag="none", tag_field="type"):
    example: ClassVar[dict[str, Any]] = {"type": "none"}


ToolChoiceParam = ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone


class ThinkingParam(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["enabled", "disabled"]
    budget_tokens: int | None = None

    example: ClassVar[dict[str, Any]] = {"type": "disabled"}


class MessagesMetadata(msgspec.Struct, frozen=True):
    user_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None

    example: ClassVar[dict[str, Any]] = {"user_id": "ada"}


class MessagesPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """What the model reads: the chat, its system prompt and the tools it may call."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    messages: Annotated[list[MessageParam], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    system: str | list[TextOnlyBlockParam] | None = None
    tools: Annotated[list[ToolParam], msgspec.Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoiceParam | None = None

    example: ClassVar[dict[str, Any]] = {
        "model": "gemini-flash",
        "system": "You are a concise assistant.",
        "messages": [{"role": "user", "content": "Name three uses of a paperclip."}],
    }

    def chat(self) -> list[ChatMessage]:
        chat = [
            piece for i, message in enumerate(self.messages) for piece in _messages(message, f"messages[{i}].content")
        ]
        if self.system is None:
            return chat
        return [ChatMessage(role="system", content=_text(self.system)), *chat]

    def tool_definitions(self) -> tuple[Tool, ...]:
        return tuple(Tool(t.name, t.input_schema, t.description) for t in self.tools or ())


class MessagesRequest(MessagesPrompt, frozen=True, kw_only=True):
    """Unknown fields are ignored (`service_tier`, `container`, …); a parameter the model's provider cannot
    honour (`top_k` and extended `thinking` are honoured by none yet) is refused: 400 `unsupported_parameter`."""

    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop_sequences: Annotated[list[str], msgspec.Meta(max_length=MAX_STOP_SEQUENCES)] | None = None
    thinking: ThinkingParam | None = None
    stream: bool = False
    metadata: MessagesMetadata | None = None

    example: ClassVar[dict[str, Any]] = MessagesPrompt.example | {"max_tokens": 40, "temperature": 0.7}

    def options(self) -> CompletionOptions:
        choice = self.tool_choice
        serial = not isinstance(choice, ToolChoiceNone | None) and choice.disable_parallel_tool_use
        return CompletionOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(self.stop_sequences or ()),
            tools=self.tool_definitions(),
            tool_choice=self._tool_choice(),
            parallel_tool_calls=False if serial else None,
        )

    def _tool_choice(self) -> ToolChoice | None:
        """`none` without tools is no choice at all; any other choice needs tools."""
        choice = self.tool_choice
        names = {tool.name for tool in self.tools or ()}
        if choice is None or (isinstance(choice, ToolChoiceNone) and not names):
            return None
        if not names:
            raise InvalidInput("`tool_choice` needs `tools`", field="tool_choice")
        if isinstance(choice, ToolChoiceTool):
            if choice.name not in names:
                raise InvalidInput(f"no tool is named {choice.name!r}", field="tool_choice.name")
            return NamedTool(choice.name)
        if isinstance(choice, ToolChoiceAny):
            return "required"
        return "none" if isinstance(choice, ToolChoiceNone) else "auto"


class TextBlock(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    text: str

    example: ClassVar[dict[str, Any]] = {
        "type": "text",
        "text": "Hold papers together, reset a router through its pinhole, and pick a jammed zipper.",
    }


class ToolUseBlock(msgspec.Struct, frozen=True, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]

    example: ClassVar[dict[str, Any]] = ToolUseBlockParam.example


class MessageUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Anthropic's `input_tokens` excludes the prompt tokens read from the provider's prompt cache
    (`cache_read_input_tokens`) and written to it (`cache_creation_input_tokens`); those two are null only in
    `message_start`, before the provider has said."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None

    example: ClassVar[dict[str, Any]] = {
        "input_tokens": 24,
        "output_tokens": 19,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


class AnthropicMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[TextBlock | ToolUseBlock]
    stop_reason: StopReason
    stop_sequence: str | None = None
    usage: MessageUsage

    example: ClassVar[dict[str, Any]] = {
        "id": "msg_fd009f99f5b442a19e7061e0d6e949a1",
        "type": "message",
        "role": "assistant",
        "model": "gemini-flash",
        "content": [TextBlock.example],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": MessageUsage.example,
    }


class AnthropicMessages:
    """Anthropic-compatible messages (stream or not; tools, images, stop sequences), for every model of the
    catalog whatever its provider, billed exactly like `POST /api/v1/generations`; tool names and inputs are
    output tokens. The token goes in `x-api-key` or `Authorization: Bearer`; `anthropic-version` is accepted and
    has no effect. `stop_reason` is never `stop_sequence`: most providers do not tell it from `end_turn`."""

    def __init__(self, identity: IdentityProvider, start: StartGeneration) -> None:
        self._identity = identity
        self._start = start

    async def __call__(self, request: MessagesRequest) -> GenerationRun:
        principal = await self._identity.current()
        if request.top_k is not None:
            raise UnsupportedParameter("top_k", request.model)
        if request.thinking is not None and request.thinking.type == "enabled":
            raise UnsupportedParameter("thinking", request.model)
        return await self._start(
            Order(
                principal=principal,
                model_id=request.model,
                messages=request.chat(),
                max_tokens=request.max_tokens,
                options=request.options(),
            )
        )


class TokenCount(msgspec.Struct, frozen=True):
    input_tokens: int

    example: ClassVar[dict[str, Any]] = {"input_tokens": 24}


class CountMessageTokens:
    """The prompt tokens of a message (Anthropic's `count_tokens`), its tools included, counted as its
    pre-charge counts them, by the model's own tokenizer: free, nothing is generated."""

    def __init__(self, catalog: ModelLookup, providers: ProviderRegistry) -> None:
        self._catalog = catalog
        self._providers = providers

    async def __call__(self, prompt: MessagesPrompt) -> TokenCount:
        model = await self._catalog.get(prompt.model)
        if model is None or not model.enabled:
            raise ModelNotFound
        counter = self._providers.get(model.provider).counter_for(model.upstream_model)
        options = CompletionOptions(tools=prompt.tool_definitions())
        return TokenCount(prompt_tokens(counter, CompletionRequest(model.upstream_model, prompt.chat(), 1, options)))


def message_id(run: Started) -> str:
    return f"msg_{run.generation_id.hex}"


def tool_use_id(run: Started, index: int, provided: str | None) -> str:
    """The provider's id of the call, or one made from the generation's when it gave none."""
    return provided or f"toolu_{run.generation_id.hex}_{index}"


def stop_reason(run: Started, outcome: Outcome) -> StopReason:
    if outcome.usage.output_tokens >= run.max_tokens:
        return "max_tokens"
    return "tool_use" if outcome.tool_calls else "end_turn"


def anthropic_message(started: Started, outcome: Outcome) -> AnthropicMessage:
    content: list[TextBlock | ToolUseBlock] = [TextBlock(outcome.output)] if outcome.output else []
    for i, call in enumerate(outcome.tool_calls):
        content.append(ToolUseBlock(tool_use_id(started, i, call.id), call.name, _input(call.arguments)))
    return AnthropicMessage(
        id=message_id(started),
        model=started.model_id,
        content=content,
        stop_reason=stop_reason(started, outcome),
        usage=message_usage(outcome),
    )


def message_usage(outcome: Outcome) -> MessageUsage:
    usage = outcome.usage
    return MessageUsage(
        input_tokens=usage.uncached_input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_write_tokens,
        cache_read_input_tokens=usage.cached_input_tokens,
    )


def _input(arguments: str) -> dict[str, Any]:
    """The call's arguments as an object; `{}` when the model's JSON is cut short (by `max_tokens`)."""
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _messages(message: MessageParam, at: str) -> Iterator[ChatMessage]:
    """One Anthropic message as the port's: its tool results first (each a `tool` message), then the rest."""
    if isinstance(message.content, str):
        yield ChatMessage(role=message.role, content=message.content)
        return
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(message.content):
        if isinstance(block, ToolResultBlockParam):
            _expect(message.role == "user", "a `tool_result` belongs in a user message", f"{at}[{j}]")
            text = _text(block.content)
            text = f"{TOOL_ERROR_PREFIX}{text}" if block.is_error else text
            yield ChatMessage("tool", text, tool_call_id=block.tool_use_id)
        elif isinstance(block, ToolUseBlockParam):
            _expect(message.role == "assistant", "a `tool_use` belongs in an assistant message", f"{at}[{j}]")
            calls.append(ToolCall(block.id, block.name, msgspec.json.encode(block.input).decode()))
        elif isinstance(block, ImageBlockParam):
            _expect(message.role == "user", "images belong in user messages", f"{at}[{j}]")
            parts.append(ImagePart(_image_url(block.source)))
        else:
            parts.append(TextPart(block.text))
    if parts or calls:
        yield ChatMessage(role=message.role, content=_content(parts), tool_calls=tuple(calls))


def _expect(condition: bool, detail: str, field: str) -> None:
    if not condition:
        raise InvalidInput(detail, field=field)


def _content(parts: list[ContentPart]) -> str | tuple[ContentPart, ...]:
    """Text only (the common shape) as one string, else the parts in order."""
    if all(isinstance(part, TextPart) for part in parts):
        return "".join(part.text for part in parts if isinstance(part, TextPart))
    return tuple(parts)


def _image_url(source: Base64ImageSource | URLImageSource) -> str:
    if isinstance(source, URLImageSource):
        return source.url
    return f"data:{source.media_type};base64,{source.data}"


def _text(content: str | list[TextOnlyBlockParam]) -> str:
    return content if isinstance(content, str) else "".join(block.text for block in content)
