"""Reference texts and comparisons: base64 of UTF-8 in, a score from the key's TypeID model out."""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID

import msgspec

from application import examples
from application.generations.start import Order, StartGeneration
from application.generations.views import UsageView
from application.patterns import STORABLE_TEXT
from application.ports.clock import Clock, IdGenerator
from application.ports.comparison import ApiKeys, References, TextReference, TypeProfiles
from application.ports.llm import ChatMessage, CompletionOptions, JsonOutput
from application.ports.persistence import UnitOfWork
from application.ports.security import IdentityProvider
from application.views import CreditsText
from domain.api_key import ApiKey, SubscriptionInactive, SubscriptionStatus
from domain.credits import Credits
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, TextTooLarge, UpstreamError
from domain.generation import GenerationKind
from domain.pricing import Usage
from domain.typeid import TypeProfile
from domain.user import Principal

MAX_TEXT_BYTES = 256 * 1024
Base64Text = Annotated[str, msgspec.Meta(description="Base64 of UTF-8 text; at most 256 KiB once decoded (else 413).")]
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
JSON_ANSWER = CompletionOptions(json_output=JsonOutput())


class InvalidBase64(InvalidInput):
    code = "invalid_base64"
    default_detail = "The text is not valid base64."


class InvalidUtf8(InvalidInput):
    code = "invalid_utf8"
    default_detail = "The decoded text is not valid UTF-8."


class ReferenceQuotaExceeded(Conflict):
    code = "reference_quota_exceeded"
    default_detail = "The account's stored references would exceed its storage quota."


class UnparseableScore(UpstreamError):
    code = "unparseable_score"
    default_detail = "The model did not answer with a usable score, even after one retry."


class ReferenceNotFound(NotFound):
    default_detail = "No such reference."


class KeyTokenRequired(Forbidden):
    default_detail = "This route needs a key-scoped token (POST /api/v1/auth)."


class NewReference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Base64Text
    name: Annotated[str, msgspec.Meta(max_length=200, pattern=STORABLE_TEXT)] | None = None

    example: ClassVar[dict[str, Any]] = {"text": examples.REFERENCE_TEXT, "name": "eiffel-tower-facts"}


class ReferenceView(msgspec.Struct, frozen=True, kw_only=True):
    reference_id: UUID
    name: str | None
    length: int
    created_at: datetime

    example: ClassVar[dict[str, Any]] = {
        "reference_id": examples.REFERENCE_ID,
        "name": "eiffel-tower-facts",
        "length": len(examples.REFERENCE_SENTENCE),
        "created_at": examples.CREATED_AT,
    }


class CompareRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Base64Text

    example: ClassVar[dict[str, Any]] = {"text": examples.COMPARED_TEXT}


class ComparisonView(msgspec.Struct, frozen=True, kw_only=True):
    comparison_id: UUID
    reference_id: UUID
    typeid: str
    score: Annotated[float, msgspec.Meta(description="In [0, scale]; a whole number stays one (`9`, not `9.0`).")]
    scale: int
    explanation: str
    model: str
    usage: UsageView
    cost: CreditsText
    balance: CreditsText | None

    example: ClassVar[dict[str, Any]] = {
        "comparison_id": examples.COMPARISON_ID,
        "reference_id": examples.REFERENCE_ID,
        "typeid": examples.TYPEID,
        "score": 9,
        "scale": 10,
        "explanation": "Same facts (1889, about 330 m); the text adds that the tower is in Paris.",
        "model": "gemini-flash",
        "usage": UsageView.example | {"input_tokens": 62, "output_tokens": 28},
        "cost": "0.9",
        "balance": "11.3",
    }


def decode_text(encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(field="text") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise TextTooLarge
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUtf8(field="text") from None


class KeyContext:
    """The key behind a key-scoped token, checked in the order the spec sets: subscription first."""

    def __init__(self, identity: IdentityProvider, keys: ApiKeys, clock: Clock) -> None:
        self._identity = identity
        self._keys = keys
        self._clock = clock

    async def active_key(self) -> tuple[Principal, ApiKey]:
        principal = await self._identity.current()
        key = None if principal.api_key is None else await self._keys.get(principal.api_key)
        if key is None:
            raise KeyTokenRequired
        if key.subscription(self._clock.now()) is not SubscriptionStatus.ACTIVE:
            raise SubscriptionInactive
        return principal, key


@dataclass(frozen=True, slots=True)
class ReferenceStorage:
    """What one account may keep in stored references, in UTF-8 bytes (0: no limit)."""

    bytes_per_user: int


class CreateReference:
    """Store a reference text (base64 of UTF-8, at most 256 KiB decoded) to compare texts against. An account
    keeps at most REFERENCE_STORAGE_BYTES_PER_USER bytes of references: 409 `reference_quota_exceeded` past it."""

    def __init__(
        self,
        context: KeyContext,
        references: References,
        storage: ReferenceStorage,
        uow: UnitOfWork,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._context = context
        self._references = references
        self._storage = storage
        self._uow = uow
        self._clock = clock
        self._ids = ids

    async def __call__(self, new: NewReference) -> ReferenceView:
        principal, key = await self._context.active_key()
        content = decode_text(new.text)
        reference = TextReference(
            id=self._ids.new_id(),
            user_id=principal.user_id,
            api_key=key.api_key,
            name=new.name,
            content=content,
            created_at=self._clock.now(),
        )
        if not await self._references.add(reference, self._storage.bytes_per_user):
            raise ReferenceQuotaExceeded(
                f"stored references are limited to {self._storage.bytes_per_user} bytes per account"
            )
        await self._uow.commit()
        return ReferenceView(
            reference_id=reference.id, name=reference.name, length=len(content), created_at=reference.created_at
        )


class CompareText:
    """Score a text against a reference with the key's TypeID: its prompts, its model, its scale. The model is
    asked for JSON `{score, explanation}`; an unusable answer is retried once, then 502 `unparseable_score`.
    Every attempt is billed to the key owner's wallet and attributed to the key (402 `key_credit_limit` once
    the key has spent its limit)."""

    def __init__(
        self,
        context: KeyContext,
        references: References,
        profiles: TypeProfiles,
        start: StartGeneration,
    ) -> None:
        self._context = context
        self._references = references
        self._profiles = profiles
        self._start = start

    async def __call__(self, reference_id: UUID, request: CompareRequest) -> ComparisonView:
        principal, key = await self._context.active_key()
        reference = await self._references.get(reference_id)
        if reference is None or reference.user_id != principal.user_id:
            raise ReferenceNotFound
        text = decode_text(request.text)
        profile = await self._profiles.get(key.typeid)
        if profile is None:
            raise SubscriptionInactive("the key's TypeID no longer exists")
        messages = [
            ChatMessage(role="system", content=profile.system),
            ChatMessage(role="user", content=profile.render(reference.content, text)),
        ]
        usage, cost = Usage(0, 0), Credits.zero()
        for _ in range(2):
            # The key's credit_limit is enforced atomically with the pre-charge (402 `key_credit_limit`).
            run = await self._start(
                Order(principal, profile.model, messages, options=JSON_ANSWER, kind=GenerationKind.COMPARISON)
            )
            outcome = await run.whole_answer()
            usage += outcome.usage
            cost += outcome.cost
            if (parsed := parse_score(outcome.output, profile)) is not None:
                score, explanation = parsed
                return ComparisonView(
                    comparison_id=outcome.generation_id,
                    reference_id=reference.id,
                    typeid=profile.typeid,
                    score=score,
                    scale=profile.scale,
                    explanation=explanation,
                    model=profile.model,
                    usage=UsageView.of(usage),
                    cost=str(cost),
                    balance=None if outcome.balance is None else str(outcome.balance),
                )
        raise UnparseableScore(f"no score in [0, {profile.scale}] after one retry; {cost} credits were charged")


def parse_score(answer: str, profile: TypeProfile) -> tuple[int | float, str] | None:
    """Accept the JSON object alone, inside a code fence, or amid prose; the score must lie in [0, scale]."""
    fenced = _FENCE.search(answer)
    candidate = fenced.group(1) if fenced else answer
    found = _OBJECT.search(candidate)
    if found is None:
        return None
    try:
        data: Any = json.loads(found.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= profile.scale:
        return None
    explanation = data.get("explanation", "")
    return score, explanation if isinstance(explanation, str) else json.dumps(explanation)
