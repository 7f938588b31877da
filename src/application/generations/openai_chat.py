"""The OpenAI Chat Completions surface over the same generation use case: same auth, same billing."""

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from application.generations.run import GenerationRun, Outcome, Started
from application.generations.start import Order, StartGeneration
from application.generations.views import MAX_MESSAGES
from application.ports.llm import ChatMessage, Role
from application.ports.security import IdentityProvider
from application.views import CreditsText
from domain.errors import InvalidInput

_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ContentPart(msgspec.Struct, frozen=True):
    type: str
    text: str | None = None

    example: ClassVar[dict[str, Any]] = {"type": "text", "text": "Name three uses of a paperclip."}


OpenAIRole = Literal["system", "developer", "user", "assistant"]


class OpenAIMessage(msgspec.Struct, frozen=True):
    role: OpenAIRole
    content: str | list[ContentPart] | None = None

    example: ClassVar[dict[str, Any]] = {"role": "user", "content": [ContentPart.example]}


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool = False

    example: ClassVar[dict[str, Any]] = {"include_usage": True}


class ResponseFormat(msgspec.Struct, frozen=True):
    type: str = "text"

    example: ClassVar[dict[str, Any]] = {"type": "json_object"}


class ChatCompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Unknown fields are ignored, as OpenAI clients send many (`n`, `user`, `seed`, …)."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    messages: Annotated[list[OpenAIMessage], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None

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


class ChatMessageOut(msgspec.Struct, frozen=True):
    content: str
    role: Literal["assistant"] = "assistant"

    example: ClassVar[dict[str, Any]] = {
        "role": "assistant",
        "content": "Hold papers together, reset a router through its pinhole, and pick a jammed zipper.",
    }


class Choice(msgspec.Struct, frozen=True):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop", "length"]

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


class ChatCompletions:
    """OpenAI-compatible chat completions (stream or not, `stream_options.include_usage`), billed exactly like
    `POST /api/v1/generations`."""

    def __init__(self, identity: IdentityProvider, start: StartGeneration) -> None:
        self._identity = identity
        self._start = start

    async def stream(self, request: ChatCompletionRequest) -> GenerationRun:
        return await self._start(
            Order(
                principal=await self._identity.current(),
                model_id=request.model,
                messages=[_message(m) for m in request.messages],
                max_tokens=request.max_completion_tokens or request.max_tokens,
                temperature=request.temperature,
                json_output=request.response_format is not None and request.response_format.type == "json_object",
            )
        )

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        run = await self.stream(request)
        outcome = await run.outcome()
        if outcome.error is not None:
            raise outcome.error
        started = run.started
        return ChatCompletion(
            id=completion_id(started),
            created=int(started.created_at.timestamp()),
            model=started.model_id,
            choices=[Choice(0, ChatMessageOut(content=outcome.output), finish_reason(started, outcome))],
            usage=completion_usage(outcome),
        )


def completion_id(run: Started) -> str:
    return f"chatcmpl-{run.generation_id.hex}"


def finish_reason(run: Started, outcome: Outcome) -> Literal["stop", "length"]:
    return "length" if outcome.usage.output_tokens >= run.max_tokens else "stop"


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


def _message(message: OpenAIMessage) -> ChatMessage:
    role = _ROLES.get(message.role)
    if role is None:
        raise InvalidInput(f"role {message.role!r} is not supported", field="messages.role")
    content = message.content
    if isinstance(content, list):
        content = "".join(part.text or "" for part in content if part.type == "text")
    return ChatMessage(role=role, content=content or "")
