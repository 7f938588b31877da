"""The generation money path, its records, and model providers that answer what the test scripted."""

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from uuid import UUID

from application.ports.billing import Abandoned, GenerationBilling, GenerationStart, Settlement
from application.ports.generations import (
    DailyActivity,
    GenerationFilter,
    GenerationRecords,
    KeyActivity,
    UsageGrouping,
    UsageTotal,
)
from application.ports.llm import (
    ChatMessage,
    CompletionRequest,
    LLMProvider,
    ProviderRegistry,
    StreamEvent,
    TokenCounter,
)
from application.ports.persistence import Page, PageRequest, Posting
from domain.api_key import KeyCreditLimit
from domain.credits import Credits
from domain.errors import ProviderUnavailable
from domain.generation import Generation, GenerationStatus
from domain.pricing import Usage
from domain.wallet import EntryKind, InsufficientBalance
from tests.support.fakes.accounts import record
from tests.support.fakes.state import FakeDatabase, GenerationRow, Tables, paged


class FakeBilling(GenerationBilling):
    """The rules of the PostgreSQL money path on the shared tables, each step committed on its own.

    `settlements` and `checkpoints` record what it was told; `failing_settlements` makes that many settle calls
    fail as a lost database would, changing nothing."""

    def __init__(self, db: FakeDatabase, *, failing_settlements: int = 0) -> None:
        self._db = db
        self.failing_settlements = failing_settlements
        self.settlements: list[Settlement] = []
        self.checkpoints: list[int] = []

    async def start(self, start: GenerationStart) -> Credits:
        return self._db.autocommit(lambda tables: _start(tables, start))

    async def checkpoint(self, generation_id: UUID, output_tokens: int, lease_expires_at: datetime) -> None:
        self.checkpoints.append(output_tokens)
        self._db.autocommit(lambda tables: _checkpoint(tables, generation_id, output_tokens, lease_expires_at))

    async def settle(self, settlement: Settlement) -> Credits | None:
        if self.failing_settlements:
            self.failing_settlements -= 1
            raise ConnectionError("the database is gone")
        self.settlements.append(settlement)
        return self._db.autocommit(lambda tables: _settle(tables, settlement, self._db.clock.now()))

    async def reap(self, now: datetime, limit: int, verdict: Callable[[Abandoned], Settlement]) -> int:
        rows = self._db.committed.generations.values()
        expired = sorted(
            (row for row in rows if row.generation.status is GenerationStatus.RUNNING and row.lease_expires_at < now),
            key=lambda row: row.lease_expires_at,
        )[:limit]
        for row in expired:
            await self.settle(verdict(Abandoned(row.generation.id, row.generation.usage, row.pricing)))
        return len(expired)


def _start(tables: Tables, start: GenerationStart) -> Credits:
    wallet = tables.wallets[start.user_id]
    if not wallet.can_start(start.precharge):
        raise InsufficientBalance
    key_reserved = Credits.zero()
    if start.api_key is not None:
        key = tables.keys.get(start.api_key)
        if key is None or (key.key.credit_limit is not None and key.spent >= key.key.credit_limit):
            raise KeyCreditLimit
        key_reserved = start.key_reserve or start.precharge
        key.spent += key_reserved
    changed = wallet.precharged(start.precharge, start.reserve)
    tables.wallets[start.user_id] = changed
    if start.precharge.is_positive():
        record(tables, changed, _posting(start, EntryKind(start.kind.value), -start.precharge), start.created_at)
    generation = Generation(
        id=start.generation_id,
        user_id=start.user_id,
        kind=start.kind,
        model=start.model_id,
        status=GenerationStatus.RUNNING,
        usage=Usage(start.input_tokens, 0),
        cost=start.precharge,
        created_at=start.created_at,
        api_key=start.api_key,
    )
    tables.generations[start.generation_id] = GenerationRow(
        generation, start.pricing, start.precharge, key_reserved, start.reserve, start.lease_expires_at
    )
    return changed.balance


def _posting(start: GenerationStart, kind: EntryKind, amount: Credits) -> Posting:
    return Posting(
        start.entry_id, start.user_id, kind, amount, generation_id=start.generation_id, api_key=start.api_key
    )


def _checkpoint(tables: Tables, generation_id: UUID, output_tokens: int, lease_expires_at: datetime) -> None:
    row = tables.generations.get(generation_id)
    if row is not None and row.generation.status is GenerationStatus.RUNNING:
        row.generation = dataclasses.replace(
            row.generation, usage=Usage(row.generation.usage.input_tokens, output_tokens)
        )
        row.lease_expires_at = lease_expires_at


def _settle(tables: Tables, settlement: Settlement, now: datetime) -> Credits | None:
    row = tables.generations.get(settlement.generation_id)
    if row is None or row.generation.status is not GenerationStatus.RUNNING:
        return None
    generation = row.generation
    row.generation = dataclasses.replace(
        generation,
        status=settlement.status,
        usage=settlement.usage,
        cost=settlement.cost,
        output=settlement.output,
        error_code=settlement.error_code,
        finished_at=settlement.finished_at,
        attempts=settlement.attempts,
    )
    wallet = tables.wallets[generation.user_id]
    changed = wallet.settled(row.precharged, row.wallet_reserved, settlement.cost)
    tables.wallets[generation.user_id] = changed
    if generation.api_key is not None:
        tables.keys[generation.api_key].spent += settlement.cost - row.key_reserved
    difference = row.precharged - settlement.cost
    if not difference.is_zero():
        kind = EntryKind.REFUND if settlement.is_refund else EntryKind(generation.kind.value)
        posting = Posting(
            settlement.entry_id,
            generation.user_id,
            kind,
            difference,
            generation_id=generation.id,
            api_key=generation.api_key,
        )
        record(tables, changed, posting, now)
    return changed.balance


class FakeGenerationRecords(GenerationRecords):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def get(self, generation_id: UUID) -> Generation | None:
        row = self._db.tables.generations.get(generation_id)
        return None if row is None else row.generation

    async def of_user(self, user_id: UUID, page: PageRequest) -> Page[Generation]:
        mine = [g for g in self._all() if g.user_id == user_id]
        return paged(mine, page, lambda g: (g.created_at, g.id), newest_first=True)

    async def search(self, where: GenerationFilter, page: PageRequest) -> Page[Generation]:
        found = [
            g
            for g in self._within(where.since, where.until)
            if where.user_id in (None, g.user_id)
            and where.model in (None, g.model)
            and where.status in (None, g.status)
            and where.api_key in (None, g.api_key)
        ]
        return paged(found, page, lambda g: (g.created_at, g.id), newest_first=True)

    async def usage(self, group_by: UsageGrouping, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        group: Callable[[Generation], str | None] = {
            UsageGrouping.USER: lambda g: str(g.user_id),
            UsageGrouping.MODEL: lambda g: g.model,
            UsageGrouping.KEY: lambda g: g.api_key,
        }[group_by]
        return _totals(self._within(since, until), group)

    async def key_usage(self, api_key: str, since: datetime | None, until: datetime | None) -> list[UsageTotal]:
        return _totals([g for g in self._within(since, until) if g.api_key == api_key], lambda g: g.model)

    async def last_use(self, api_key: str) -> datetime | None:
        return max((g.created_at for g in self._all() if g.api_key == api_key), default=None)

    async def key_activity(self, since: datetime) -> list[KeyActivity]:
        activity = []
        for api_key in self._db.tables.keys:
            used = [g for g in self._all() if g.api_key == api_key]
            recent = [g for g in used if g.created_at >= since]
            last = max((g.created_at for g in used), default=None)
            activity.append(KeyActivity(api_key, len(recent), sum((g.cost for g in recent), Credits.zero()), last))
        return sorted(
            activity, key=lambda a: (a.last_used_at is None, -(a.last_used_at or since).timestamp(), a.api_key)
        )

    async def daily_activity(self, since: datetime, until: datetime) -> list[DailyActivity]:
        groups: dict[tuple[date, str], list[Generation]] = defaultdict(list)
        for generation in self._within(since, until):
            groups[(generation.created_at.astimezone(UTC).date(), generation.model)].append(generation)
        return [
            DailyActivity(
                day,
                model,
                len(members),
                sum(g.status is GenerationStatus.FAILED for g in members),
                sum(g.status is GenerationStatus.RUNNING for g in members),
                sum((g.cost for g in members), Credits.zero()),
            )
            for (day, model), members in sorted(groups.items())
        ]

    def _all(self) -> list[Generation]:
        return [row.generation for row in self._db.tables.generations.values()]

    def _within(self, since: datetime | None, until: datetime | None) -> list[Generation]:
        return [
            g
            for g in self._all()
            if (since is None or g.created_at >= since) and (until is None or g.created_at < until)
        ]


def _totals(generations: Sequence[Generation], group: Callable[[Generation], str | None]) -> list[UsageTotal]:
    groups: dict[str | None, list[Generation]] = defaultdict(list)
    for generation in generations:
        groups[group(generation)].append(generation)
    totals = [
        UsageTotal(
            key=key,
            requests=len(members),
            usage=sum((g.usage for g in members[1:]), members[0].usage),
            credits=sum((g.cost for g in members), Credits.zero()),
        )
        for key, members in groups.items()
    ]
    return sorted(totals, key=lambda t: (-t.credits.micros, t.key is None, t.key or ""))


class WordCounter(TokenCounter):
    """One token per word of a message's text (its images are free), one more per message: figures a test can
    count by eye."""

    def count_text(self, text: str) -> int:
        return len(text.split())

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        return sum(self.count_text(message.text) + 1 for message in messages)


class Stall:
    """In a script: the upstream goes silent here until `resume()` (or forever); `reached` is set once it is."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._resumed = asyncio.Event()

    def resume(self) -> None:
        self._resumed.set()

    async def wait(self) -> None:
        self.reached.set()
        await self._resumed.wait()


Step = StreamEvent | Exception | Stall


class ScriptedProvider(LLMProvider):
    """Plays `script` on each stream: events in order, an exception is raised where it stands, a Stall waits.
    `scripts` queues one script per stream (then repeats the last); `closed` counts streams closed early or late."""

    def __init__(self, *scripts: Sequence[Step], default_max_tokens: int | None = None) -> None:
        self.scripts = [list(script) for script in scripts] or [[]]
        self.requests: list[CompletionRequest] = []
        self.closed = 0
        self._default_max_tokens = default_max_tokens
        self._counter = WordCounter()

    @property
    def default_max_tokens(self) -> int | None:
        return self._default_max_tokens

    @property
    def token_counter(self) -> TokenCounter:
        return self._counter

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        self.requests.append(request)
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        return self._play(script)

    async def _play(self, script: Sequence[Step]) -> AsyncGenerator[StreamEvent, None]:
        try:
            for step in script:
                if isinstance(step, Stall):
                    await step.wait()
                elif isinstance(step, Exception):
                    raise step
                else:
                    yield step
        finally:
            self.closed += 1


BUILT_IN_PROVIDERS = frozenset({"anthropic", "gemini", "local", "openai", "simulator"})


class FakeProviders(ProviderRegistry):
    def __init__(self, providers: Mapping[str, LLMProvider]) -> None:
        self._providers = dict(providers)

    def get(self, provider: str) -> LLMProvider:
        found = self._providers.get(provider)
        if found is None:
            raise ProviderUnavailable(f"provider {provider!r} is not configured")
        return found

    def add(self, name: str, provider: LLMProvider) -> None:
        """Another configured provider (a second deployment's instance)."""
        self._providers[name] = provider

    def names(self) -> frozenset[str]:
        """As the real registry: the built-ins are known, configured or not."""
        return BUILT_IN_PROVIDERS | self._providers.keys()
