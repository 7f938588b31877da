from datetime import datetime
from typing import Any, ClassVar

import msgspec

from application.instants import require_window
from application.ports.generations import GenerationRecords, UsageGrouping, UsageTotal
from application.views import CreditsText


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts as in a generation's `usage`: `input_tokens` include the cached and cache-written ones,
    `output_tokens` the reasoning ones."""

    key: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    credits: CreditsText

    example: ClassVar[dict[str, Any]] = {
        "key": "dr14",
        "requests": 3,
        "input_tokens": 72,
        "output_tokens": 120,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "credits": "38.4",
    }

    @classmethod
    def of(cls, total: UsageTotal) -> "UsageRow":
        usage = total.usage
        return cls(
            key=total.key,
            requests=total.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            credits=str(total.credits),
        )


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    group_by: UsageGrouping
    since: datetime | None = msgspec.field(name="from", default=None)
    until: datetime | None = msgspec.field(name="to", default=None)
    items: list[UsageRow]

    example: ClassVar[dict[str, Any]] = {
        "group_by": "model",
        "from": "2026-01-01T00:00:00Z",
        "to": "2026-02-01T00:00:00Z",
        "items": [UsageRow.example],
    }


class GetUsage:
    """Credits spent and tokens used, grouped by user, model or API key, over generations and comparisons
    created in `[from, to)`; largest spend first. Without a key, `key` is null in the `key` grouping."""

    def __init__(self, records: GenerationRecords) -> None:
        self._records = records

    async def __call__(self, group_by: UsageGrouping, since: datetime | None, until: datetime | None) -> UsageReport:
        require_window(since, until)
        totals = await self._records.usage(group_by, since, until)
        return UsageReport(group_by=group_by, since=since, until=until, items=[UsageRow.of(t) for t in totals])
