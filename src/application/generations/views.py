from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import msgspec

from application import examples
from application.ports.persistence import Page
from application.views import CreditsText
from domain.generation import Generation, GenerationKind, GenerationStatus
from domain.pricing import Usage
from domain.routing import Attempt


class UsageView(msgspec.Struct, frozen=True, kw_only=True):
    """`input_tokens` counts every prompt token, the `cached_input_tokens` the provider served from its cache and
    the `cache_write_tokens` it wrote to it included; `output_tokens` every generated token, `reasoning_tokens`
    included."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int

    example: ClassVar[dict[str, Any]] = {
        "input_tokens": 24,
        "output_tokens": 40,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }

    @classmethod
    def of(cls, usage: Usage) -> "UsageView":
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )


class OutputView(msgspec.Struct, frozen=True, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str

    example: ClassVar[dict[str, Any]] = {
        "role": "assistant",
        "content": "Hold papers together, reset a router through its pinhole, and pick a jammed zipper.",
    }


class GenerationView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: UUID
    model: str
    status: GenerationStatus
    usage: UsageView
    cost: CreditsText
    created_at: datetime
    finished_at: datetime | None
    output: OutputView | None = None
    balance: CreditsText | None = None
    api_key: str | None = None

    example: ClassVar[dict[str, Any]] = {
        "id": examples.GENERATION_ID,
        "model": "dr14",
        "status": "completed",
        "usage": UsageView.example,
        "cost": "12.8",
        "created_at": examples.CREATED_AT,
        "finished_at": examples.FINISHED_AT,
        "output": OutputView.example,
        "balance": "12.2",
    }

    @classmethod
    def of(cls, generation: Generation, *, balance: str | None = None) -> "GenerationView":
        return cls(
            id=generation.id,
            model=generation.model,
            status=generation.status,
            usage=UsageView.of(generation.usage),
            cost=str(generation.cost),
            created_at=generation.created_at,
            finished_at=generation.finished_at,
            output=None if generation.output is None else OutputView(content=generation.output),
            balance=balance,
            api_key=generation.api_key,
        )


class GenerationPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[GenerationView]
    next_cursor: str | None

    example: ClassVar[dict[str, Any]] = {"items": [GenerationView.example], "next_cursor": None}

    @classmethod
    def of(cls, page: Page[Generation]) -> "GenerationPage":
        return cls(items=[GenerationView.of(g) for g in page.items], next_cursor=page.next_cursor)


class AttemptView(msgspec.Struct, frozen=True, kw_only=True):
    """One try of a deployment (`provider/upstream_model`): `answered`, `abandoned` (the client left first),
    `unavailable` (not configured), or the failure (`connect`, `timeout`, `rate_limited`, `server_error`,
    `client_error`, `broken`); `ttft_ms` is its time to the first token when it answered."""

    deployment: str
    outcome: str
    ttft_ms: int | None = None

    example: ClassVar[dict[str, Any]] = {"deployment": "openai-b/gpt-4o-mini", "outcome": "answered", "ttft_ms": 412}

    @classmethod
    def of(cls, attempt: Attempt) -> "AttemptView":
        return cls(deployment=attempt.deployment, outcome=attempt.outcome, ttft_ms=attempt.ttft_ms)


class GenerationRecordView(GenerationView, frozen=True, kw_only=True, omit_defaults=True):
    """A generation as admins see it: whose it is, what it was spent on (`generation` or `comparison`), the
    `error_code` it ended with when it failed, and its `attempts` on the model's deployments, in order (absent
    for one settled by the reaper)."""

    user_id: UUID
    kind: GenerationKind
    error_code: str | None = None
    attempts: list[AttemptView] = []

    example: ClassVar[dict[str, Any]] = {
        **GenerationView.example,
        "user_id": examples.USER_ID,
        "kind": "generation",
        "attempts": [
            {"deployment": "openai/gpt-4o-mini", "outcome": "rate_limited"},
            {"deployment": "openai-b/gpt-4o-mini", "outcome": "answered", "ttft_ms": 412},
        ],
    }

    @classmethod
    def of_record(cls, generation: Generation) -> "GenerationRecordView":
        return cls(
            **msgspec.structs.asdict(GenerationView.of(generation)),
            user_id=generation.user_id,
            kind=generation.kind,
            error_code=generation.error_code,
            attempts=[AttemptView.of(attempt) for attempt in generation.attempts],
        )


class GenerationRecordPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[GenerationRecordView]
    next_cursor: str | None

    example: ClassVar[dict[str, Any]] = {"items": [GenerationRecordView.example], "next_cursor": None}

    @classmethod
    def of(cls, page: Page[Generation]) -> "GenerationRecordPage":
        return cls(items=[GenerationRecordView.of_record(g) for g in page.items], next_cursor=page.next_cursor)


MessageRole = Literal["system", "user", "assistant"]
MAX_MESSAGES = 1000


class Message(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: MessageRole
    content: Annotated[str, msgspec.Meta(max_length=1_000_000)]

    example: ClassVar[dict[str, Any]] = {"role": "user", "content": "Name three uses of a paperclip."}


class GenerationRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    messages: Annotated[list[Message], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    stream: bool = False

    example: ClassVar[dict[str, Any]] = {
        "model": "dr14",
        "messages": [{"role": "system", "content": "You are a concise assistant."}, Message.example],
        "max_tokens": 40,
        "temperature": 0.7,
        "stream": False,
    }
