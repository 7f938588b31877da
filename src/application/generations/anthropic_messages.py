"""The Anthropic Messages surface over the same generation use case: same auth, same billing."""

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from application.generations.run import GenerationRun, Outcome, Started
from application.generations.start import Order, StartGeneration
from application.generations.views import MAX_MESSAGES
from application.ports.llm import ChatMessage
from application.ports.security import IdentityProvider

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class TextBlock(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    """Other fields of a text block (`cache_control`, `citations`) are accepted and have no effect."""

    text: str

    example: ClassVar[dict[str, Any]] = {"type": "text", "text": "Name three uses of a paperclip."}


ContentBlockParam = TextBlock


class MessageParam(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockParam]

    example: ClassVar[dict[str, Any]] = {"role": "user", "content": [TextBlock.example]}


class Metadata(msgspec.Struct, frozen=True):
    user_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None

    example: ClassVar[dict[str, Any]] = {"user_id": "ada"}


class MessagesRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Unknown fields are ignored, as Anthropic clients send some (`anthropic-beta` features, `service_tier`)."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    messages: Annotated[list[MessageParam], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    system: str | list[TextBlock] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    stream: bool = False
    metadata: Metadata | None = None

    example: ClassVar[dict[str, Any]] = {
        "model": "gemini-flash",
        "max_tokens": 40,
        "system": "You are a concise assistant.",
        "messages": [{"role": "user", "content": "Name three uses of a paperclip."}],
        "temperature": 0.7,
    }


class TextContent(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    text: str

    example: ClassVar[dict[str, Any]] = {
        "type": "text",
        "text": "Hold papers together, reset a router through its pinhole, and pick a jammed zipper.",
    }


class MessageUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Anthropic's `input_tokens` excludes the prompt tokens read from or written to the prompt cache, which
    `cache_read_input_tokens` and `cache_creation_input_tokens` count (null: not reported)."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    example: ClassVar[dict[str, Any]] = {
        "input_tokens": 24,
        "output_tokens": 19,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
    }


class AnthropicMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[TextContent]
    stop_reason: StopReason
    stop_sequence: str | None = None
    usage: MessageUsage

    example: ClassVar[dict[str, Any]] = {
        "id": "msg_fd009f99f5b442a19e7061e0d6e949a1",
        "type": "message",
        "role": "assistant",
        "model": "gemini-flash",
        "content": [TextContent.example],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": MessageUsage.example,
    }


class AnthropicMessages:
    """Anthropic-compatible messages (stream or not), for every model of the catalog whatever its provider,
    billed exactly like `POST /api/v1/generations`. The token goes in `x-api-key` or `Authorization: Bearer`;
    `anthropic-version` is accepted and has no effect."""

    def __init__(self, identity: IdentityProvider, start: StartGeneration) -> None:
        self._identity = identity
        self._start = start

    async def stream(self, request: MessagesRequest) -> GenerationRun:
        return await self._start(
            Order(
                principal=await self._identity.current(),
                model_id=request.model,
                messages=_chat(request),
                max_tokens=request.max_tokens,
                temperature=request.temperature,
            )
        )

    async def complete(self, request: MessagesRequest) -> AnthropicMessage:
        run = await self.stream(request)
        outcome = await run.outcome()
        if outcome.error is not None:
            raise outcome.error
        started = run.started
        return AnthropicMessage(
            id=message_id(started),
            model=started.model_id,
            content=[TextContent(outcome.output)] if outcome.output else [],
            stop_reason=stop_reason(started, outcome),
            usage=message_usage(outcome),
        )


def message_id(run: Started) -> str:
    return f"msg_{run.generation_id.hex}"


def stop_reason(run: Started, outcome: Outcome) -> StopReason:
    return "max_tokens" if outcome.usage.output_tokens >= run.max_tokens else "end_turn"


def message_usage(outcome: Outcome) -> MessageUsage:
    return MessageUsage(input_tokens=outcome.usage.input_tokens, output_tokens=outcome.usage.output_tokens)


def _chat(request: MessagesRequest) -> list[ChatMessage]:
    chat = [ChatMessage(role=message.role, content=_text(message.content)) for message in request.messages]
    if request.system is None:
        return chat
    return [ChatMessage(role="system", content=_text(request.system)), *chat]


def _text(content: str | list[TextBlock]) -> str:
    return content if isinstance(content, str) else "".join(block.text for block in content)
