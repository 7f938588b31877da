from datetime import datetime, timedelta
from typing import Any, ClassVar

import msgspec

from application import examples
from application.admin.usage import UsageRow
from application.comparison.subscription import visible_key
from application.instants import require_window
from application.ports.clock import Clock
from application.ports.comparison import ApiKeys
from application.ports.generations import GenerationRecords, KeyActivity
from application.ports.security import IdentityProvider
from application.views import CreditsText
from domain.credits import Credits
from domain.pricing import Usage

ACTIVITY_WINDOW = timedelta(hours=24)


class KeyBilling(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str
    typeid: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    credits_spent: CreditsText
    last_used_at: datetime | None
    by_model: list[UsageRow]

    example: ClassVar[dict[str, Any]] = {
        "api_key": examples.API_KEY,
        "typeid": examples.TYPEID,
        "requests": 2,
        "input_tokens": 124,
        "output_tokens": 56,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "credits_spent": "1.8",
        "last_used_at": examples.FINISHED_AT,
        "by_model": [
            {
                "key": "gemini-flash",
                "requests": 2,
                "input_tokens": 124,
                "output_tokens": 56,
                "cached_input_tokens": 0,
                "cache_write_tokens": 0,
                "reasoning_tokens": 0,
                "credits": "1.8",
            }
        ],
    }


class GetKeyBilling:
    """What a key spent (generations and comparisons attributed to it) over `[from, to)`, per model."""

    def __init__(self, keys: ApiKeys, records: GenerationRecords, identity: IdentityProvider) -> None:
        self._keys = keys
        self._records = records
        self._identity = identity

    async def __call__(self, api_key: str, since: datetime | None, until: datetime | None) -> KeyBilling:
        require_window(since, until)
        key = await visible_key(self._keys, await self._identity.current(), api_key)
        totals = await self._records.key_usage(api_key, since, until)
        usage = sum((t.usage for t in totals), Usage(0, 0))
        return KeyBilling(
            api_key=key.api_key,
            typeid=key.typeid,
            requests=sum(t.requests for t in totals),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            credits_spent=str(sum((t.credits for t in totals), Credits.zero())),
            last_used_at=await self._records.last_use(api_key),
            by_model=[UsageRow.of(t) for t in totals],
        )


class KeyActivityRow(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str
    requests_24h: int
    credits_24h: CreditsText
    last_used_at: datetime | None

    example: ClassVar[dict[str, Any]] = {
        "api_key": examples.API_KEY,
        "requests_24h": 2,
        "credits_24h": "1.8",
        "last_used_at": examples.FINISHED_AT,
    }

    @classmethod
    def of(cls, activity: KeyActivity) -> "KeyActivityRow":
        return cls(
            api_key=activity.api_key,
            requests_24h=activity.requests,
            credits_24h=str(activity.credits),
            last_used_at=activity.last_used_at,
        )


class KeysActivityReport(msgspec.Struct, frozen=True, kw_only=True):
    items: list[KeyActivityRow]

    example: ClassVar[dict[str, Any]] = {"items": [KeyActivityRow.example]}


class GetKeysActivity:
    """Per API key: requests and credits in the last 24 hours, and when it was last used; most recent first."""

    def __init__(self, records: GenerationRecords, clock: Clock) -> None:
        self._records = records
        self._clock = clock

    async def __call__(self) -> KeysActivityReport:
        activity = await self._records.key_activity(self._clock.now() - ACTIVITY_WINDOW)
        return KeysActivityReport(items=[KeyActivityRow.of(a) for a in activity])
