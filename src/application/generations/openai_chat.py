"""The OpenAI Chat Completions surface over the same generation use case: same auth, same billing."""

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from application.generations.run import GenerationRun, Outcome, Started
from application.generations.start import Order, StartGeneration
from application.generations.views import MAX_MESSAGES
from application.patterns import IMAGE_URL, TOOL_NAME
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    ContentPart,
    ImagePart,
    JsonOutput,
    JsonSchema,
    NamedTool,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from application.ports.security import IdentityProvider
from application.views import CreditsText
from domain.errors import InvalidInput

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 4
FunctionName = Annotated[str, msgspec.Meta(pattern=TOOL_NAME)]
FinishReason = Literal["stop", "length", "tool_calls"]
StopSequence = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class TextContent(msgspec.Struct, frozen=True, tag_field="type", tag="text"):
    text: str

    example: ClassVar[dict[str, Any]] = {"type": "text", "text": "Name three uses of a paperclip."}


class ImageUrl(msgspec.Struct, frozen=True):
    """A `data:<media type>;base64,...` URL, or an http(s) URL the provider fetches."""

    url: Annotated[str, msgspec.Meta(pattern=IMAGE_URL)]
    detail: Literal["auto", "low", "high"] | None = None

    example: ClassVar[dict[str, Any]] = {"url": "https://example.com/paperclip.png", "detail": "low"}


class ImageContent(msgspec.Struct, frozen=True, tag_field="type", tag="image_url"):
    image_url: ImageUrl

    example: ClassVar[dict[str, Any]] = {"type": "image_url", "image_url": ImageUrl.example}


class FunctionCall(msgspec.Struct, frozen=True):
    """`arguments`: the JSON object of the call, as text."""

    name: FunctionName
    arguments: str

    example: ClassVar[dict[str, Any]] = {"name": "get_weather", "arguments": '{"city": "Paris"}'}


class ToolCallItem(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    function: FunctionCall
    type: Literal["function"] = "function"

    example: ClassVar[dict[str, Any]] = {"id": "call_8f1c2a", "type": "function", "function": FunctionCall.example}


OpenAIRole = Literal["system", "developer", "user", "assistant", "tool"]


class OpenAIMessage(msgspec.Struct, frozen=True, kw_only=True):
    role: OpenAIRole
    content: str | list[TextContent | ImageContent] | None = None
    tool_calls: list[ToolCallItem] | None = None
    tool_call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None

    example: ClassVar[dict[str, Any]] = {"role": "user", "content": [TextContent.example]}


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool = False

    example: ClassVar[dict[str, Any]] = {"include_usage": True}


class FunctionDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """`parameters`: the JSON Schema of the arguments (an object)."""

    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    example: ClassVar[dict[str, Any]] = {
        "name": "get_weather",
        "description": "The current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }


class FunctionTool(msgspec.Struct, frozen=True):
    function: FunctionDefinition
    type: Literal["function"] = "function"

    example: ClassVar[dict[str, Any]] = {"type": "function", "function": FunctionDefinition.example}


class ChosenFunction(msgspec.Struct, frozen=True):
    name: FunctionName

    example: ClassVar[dict[str, Any]] = {"name": "get_weather"}


class NamedToolChoice(msgspec.Struct, frozen=True):
    function: ChosenFunction
    type: Literal["function"] = "function"

    example: ClassVar[dict[str, Any]] = {"type": "function", "function": ChosenFunction.example}


class TextFormat(msgspec.Struct, frozen=True, tag_field="type", tag="text"):
    example: ClassVar[dict[str, Any]] = {"type": "text"}


class JsonObjectFormat(msgspec.Struct, frozen=True, tag_field="type", tag="json_object"):
    example: ClassVar[dict[str, Any]] = {"type": "json_object"}


class JsonSchemaSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: FunctionName
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None

    example: ClassVar[dict[str, Any]] = {
        "name": "uses",
        "schema": {"type": "object", "properties": {"uses": {"type": "array", "items": {"type": "string"}}}},
        "strict": True,
    }


class JsonSchemaFormat(msgspec.Struct, frozen=True, tag_field="type", tag="json_schema"):
    json_schema: JsonSchemaSpec

    example: ClassVar[dict[str, Any]] = {"type": "json_schema", "json_schema": JsonSchemaSpec.example}


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaFormat


class ChatCompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Unknown fields are ignored, as OpenAI clients send many (`n`, `user`, …). A parameter the model's provider
    cannot honour is refused (400 `unsupported_parameter`)."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    messages: Annotated[list[OpenAIMessage], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    stop: StopSequence | Annotated[list[StopSequence], msgspec.Meta(max_length=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = None
    tools: Annotated[list[FunctionTool], msgspec.Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    example: ClassVar[dict[str, Any]] = {
        "model": "gemini-flash",
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Name three uses of a paperclip."},
        ],
        "max_tokens": 40,
        "temperature": 0.7,
    }

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def options(self) -> CompletionOptions:
        return CompletionOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            stop=(self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ()),
            seed=self.seed,
            tools=tuple(_tool(tool.function) for tool in self.tools or ()),
            tool_choice=self._tool_choice(),
            parallel_tool_calls=self.parallel_tool_calls if self.tools else None,  # means nothing without tools
            json_output=_json_output(self.response_format),
        )

    def _tool_choice(self) -> ToolChoice | None:
        choice = self.tool_choice
        if choice is None:
            return None
        names = {tool.function.name for tool in self.tools or ()}
        if not names:
            raise InvalidInput("`tool_choice` needs `tools`", field="tool_choice")
        if isinstance(choice, str):
            return choice
        if choice.function.name not in names:
            raise InvalidInput(f"no tool is named {choice.function.name!r}", field="tool_choice.function.name")
        return NamedTool(choice.function.name)


class ToolCallOut(msgspec.Struct, frozen=True):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"

    example: ClassVar[dict[str, Any]] = ToolCallItem.example


class ChatMessageOut(msgspec.Struct, frozen=True, kw_only=True):
    """`content` is null when the answer is only tool calls."""

    content: str | None
    role: Literal["assistant"] = "assistant"
    tool_calls: list[ToolCallOut] | None = None

    example: ClassVar[dict[str, Any]] = {
        "role": "assistant",
        "content": "Hold papers together, reset a router through its pinhole, and pick a jammed zipper.",
    }


class Choice(msgspec.Struct, frozen=True):
    index: int
    message: ChatMessageOut
    finish_reason: FinishReason

    example: ClassVar[dict[str, Any]] = {"index": 0, "message": ChatMessageOut.example, "finish_reason": "stop"}


class PromptTokensDetails(msgspec.Struct, frozen=True):
    """`cached_tokens` as OpenAI reports them; `cache_write_tokens` (prompt tokens written to the provider's
    cache, which OpenAI's own API does not report) as OpenRouter does."""

    cached_tokens: int
    cache_write_tokens: int

    example: ClassVar[dict[str, Any]] = {"cached_tokens": 0, "cache_write_tokens": 0}


class CompletionTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int

    example: ClassVar[dict[str, Any]] = {"reasoning_tokens": 0}


class CompletionUsage(msgspec.Struct, frozen=True, kw_only=True):
    """OpenAI's usage: `prompt_tokens` include the cached ones, `completion_tokens` the reasoning ones. `cost`
    (credits, a decimal string) is what the generation was billed."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails
    cost: CreditsText

    example: ClassVar[dict[str, Any]] = {
        "prompt_tokens": 24,
        "completion_tokens": 19,
        "total_tokens": 43,
        "prompt_tokens_details": PromptTokensDetails.example,
        "completion_tokens_details": CompletionTokensDetails.example,
        "cost": "0.43",
    }


class ChatCompletion(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage

    example: ClassVar[dict[str, Any]] = {
        "id": "chatcmpl-fd009f99f5b442a19e7061e0d6e949a1",
        "object": "chat.completion",
        "created": 1767259800,
        "model": "gemini-flash",
        "choices": [Choice.example],
        "usage": CompletionUsage.example,
    }


class CreateChatCompletion:
    """OpenAI-compatible chat completions (stream or not, `stream_options.include_usage`; tools, images, JSON
    output), billed exactly like `POST /api/v1/generations`; tool-call names and arguments are output tokens."""

    def __init__(self, identity: IdentityProvider, start: StartGeneration) -> None:
        self._identity = identity
        self._start = start

    async def __call__(self, request: ChatCompletionRequest) -> GenerationRun:
        return await self._start(
            Order(
                principal=await self._identity.current(),
                model_id=request.model,
                messages=[_message(m, f"messages[{i}]") for i, m in enumerate(request.messages)],
                max_tokens=request.max_completion_tokens or request.max_tokens,
                options=request.options(),
            )
        )


def chat_completion(started: Started, outcome: Outcome) -> ChatCompletion:
    calls = [ToolCallOut(call.id, FunctionCall(call.name, call.arguments)) for call in outcome.tool_calls]
    message = ChatMessageOut(content=outcome.output or (None if calls else ""), tool_calls=calls or None)
    return ChatCompletion(
        id=completion_id(started),
        created=int(started.created_at.timestamp()),
        model=started.model_id,
        choices=[Choice(0, message, finish_reason(started, outcome))],
        usage=completion_usage(outcome),
    )


def completion_id(run: Started) -> str:
    return f"chatcmpl-{run.generation_id.hex}"


def finish_reason(run: Started, outcome: Outcome) -> FinishReason:
    if outcome.usage.output_tokens >= run.max_tokens:
        return "length"
    return "tool_calls" if outcome.tool_calls else "stop"


def completion_usage(outcome: Outcome) -> CompletionUsage:
    usage = outcome.usage
    return CompletionUsage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetails(usage.cached_input_tokens, usage.cache_write_tokens),
        completion_tokens_details=CompletionTokensDetails(usage.reasoning_tokens),
        cost=str(outcome.cost),
    )


def _message(message: OpenAIMessage, at: str) -> ChatMessage:
    role = _ROLES[message.role]
    if message.tool_calls and role != "assistant":
        raise InvalidInput("only an assistant message carries `tool_calls`", field=f"{at}.tool_calls")
    if (role == "tool") != (message.tool_call_id is not None):
        raise InvalidInput("a `tool` message, and only it, names its `tool_call_id`", field=f"{at}.tool_call_id")
    content = _content(message.content)
    if role != "user" and not isinstance(content, str) and any(isinstance(p, ImagePart) for p in content):
        raise InvalidInput("images belong in user messages", field=f"{at}.content")
    calls = tuple(ToolCall(call.id, call.function.name, call.function.arguments) for call in message.tool_calls or ())
    return ChatMessage(role=role, content=content, tool_calls=calls, tool_call_id=message.tool_call_id)


def _content(content: str | list[TextContent | ImageContent] | None) -> str | tuple[ContentPart, ...]:
    if content is None or isinstance(content, str):
        return content or ""
    if all(isinstance(part, TextContent) for part in content):  # the common shape: text in parts
        return "".join(part.text for part in content if isinstance(part, TextContent))
    return tuple(
        TextPart(part.text) if isinstance(part, TextContent) else ImagePart(part.image_url.url, part.image_url.detail)
        for part in content
    )


def _tool(function: FunctionDefinition) -> Tool:
    if function.parameters is None:
        return Tool(function.name, description=function.description, strict=function.strict)
    return Tool(function.name, function.parameters, function.description, function.strict)


def _json_output(response_format: ResponseFormat | None) -> JsonOutput | None:
    if response_format is None or isinstance(response_format, TextFormat):
        return None
    if isinstance(response_format, JsonObjectFormat):
        return JsonOutput()
    spec = response_format.json_schema
    schema = spec.schema if spec.schema is not None else {"type": "object"}
    return JsonOutput(JsonSchema(spec.name, schema, spec.description, spec.strict))
