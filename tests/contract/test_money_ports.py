"""The money ports' contracts, one suite run against the in-memory fakes and against PostgreSQL (wild-workouts'
repository tests): the fakes the application tests trust must answer as the adapters do."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from adapters.postgres.generation_billing import PgGenerationBilling
from adapters.postgres.generation_records import PgGenerationRecords
from adapters.postgres.idempotency import PgIdempotencyStore
from adapters.postgres.statements import StatementPool
from adapters.postgres.unit_of_work import SqlaUnitOfWork
from adapters.postgres.wallet_ledger import PgWalletLedger
from application.ports.billing import Abandoned, GenerationBilling, GenerationStart, Settlement
from application.ports.generations import GenerationFilter, GenerationRecords, UsageGrouping
from application.ports.persistence import (
    ClaimOutcome,
    IdempotencyStore,
    PageRequest,
    Posting,
    UnitOfWork,
    WalletLedger,
)
from domain.api_key import KeyCreditLimit
from domain.credits import Credits
from domain.errors import NotFound
from domain.generation import GenerationKind, GenerationStatus, UsageSource
from domain.pricing import Pricing, Usage
from domain.wallet import MAX_BALANCE, BalanceOutOfRange, EntryKind, InsufficientBalance
from tests.support.fakes import Fakes
from tests.support.money import balance_of, funded_user, key_row

PRICING = Pricing(1, Credits(10), Credits(20))
LEASE = timedelta(seconds=30)
FIRST_PAGE = PageRequest()


class World(Protocol):
    """Set-up and read-back outside the ports under test."""

    async def user(self, micros: int) -> uuid.UUID: ...

    async def key(self, user_id: uuid.UUID, credit_limit: int | None) -> str: ...

    async def balance(self, user_id: uuid.UUID) -> int: ...


@dataclass
class Ports:
    ledger: WalletLedger
    idempotency: IdempotencyStore
    uow: UnitOfWork
    billing: GenerationBilling
    records: GenerationRecords
    world: World


@dataclass
class FakeWorld:
    fakes: Fakes

    async def user(self, micros: int) -> uuid.UUID:
        user = await self.fakes.user(f"u{len(self.fakes.db.tables.users)}")
        if micros:
            await self.fakes.fund(user.id, str(Credits(micros)))
        return user.id

    async def key(self, user_id: uuid.UUID, credit_limit: int | None) -> str:
        user = self.fakes.db.tables.users[user_id].user
        limit = None if credit_limit is None else str(Credits(credit_limit))
        return (await self.fakes.key(user, credit_limit=limit)).api_key

    async def balance(self, user_id: uuid.UUID) -> int:
        return self.fakes.balance(user_id).micros


@dataclass
class PgWorld:
    engine: AsyncEngine

    async def user(self, micros: int) -> uuid.UUID:
        return await funded_user(self.engine, micros)

    async def key(self, user_id: uuid.UUID, credit_limit: int | None) -> str:
        return await key_row(self.engine, user_id, credit_limit)

    async def balance(self, user_id: uuid.UUID) -> int:
        return await balance_of(self.engine, user_id)


@pytest.fixture
async def ports(backend: tuple[AsyncEngine, StatementPool] | None) -> AsyncIterator[Ports]:
    if backend is None:
        fakes = Fakes()
        yield Ports(fakes.ledger, fakes.idempotency, fakes.uow, fakes.billing, fakes.records, FakeWorld(fakes))
        return
    engine, statements = backend
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        uow = SqlaUnitOfWork(session)
        yield Ports(
            PgWalletLedger(session),
            PgIdempotencyStore(session),
            uow,
            PgGenerationBilling(statements),
            PgGenerationRecords(session),
            PgWorld(engine),
        )


def _start(
    user_id: uuid.UUID,
    precharge: int,
    *,
    reserve: int = 0,
    api_key: str | None = None,
    key_reserve: int | None = None,
    lease: timedelta = LEASE,
) -> GenerationStart:
    now = datetime.now(UTC)
    return GenerationStart(
        generation_id=uuid.uuid4(),
        entry_id=uuid.uuid4(),
        user_id=user_id,
        kind=GenerationKind.GENERATION,
        model_id="dr14",
        api_key=api_key,
        pricing=PRICING,
        input_tokens=precharge // 10,
        precharge=Credits(precharge),
        created_at=now,
        lease_expires_at=now + lease,
        key_reserve=None if key_reserve is None else Credits(key_reserve),
        reserve=Credits(reserve),
    )


def _settlement(start: GenerationStart, cost: int, status: GenerationStatus = GenerationStatus.COMPLETED) -> Settlement:
    return Settlement(
        generation_id=start.generation_id,
        entry_id=uuid.uuid4(),
        status=status,
        usage=Usage(start.input_tokens, 1),
        usage_source=UsageSource.PROVIDER,
        cost=Credits(cost),
        output="x",
        finished_at=datetime.now(UTC),
    )


async def test_a_posting_moves_the_balance_by_one_row(ports: Ports) -> None:
    user_id = await ports.world.user(0)
    entry = await ports.ledger.post(Posting(uuid.uuid4(), user_id, EntryKind.ADMIN_ADJUSTMENT, Credits(-5), reason="r"))
    await ports.uow.commit()
    assert (entry.balance_after, entry.reason) == (Credits(-5), "r")
    assert await ports.world.balance(user_id) == -5
    assert [e.amount for e in (await ports.ledger.entries(user_id, PageRequest())).items] == [Credits(-5)]


async def test_a_posting_to_no_wallet_is_not_found_and_past_the_bound_is_refused(ports: Ports) -> None:
    with pytest.raises(NotFound):
        await ports.ledger.post(Posting(uuid.uuid4(), uuid.uuid4(), EntryKind.ADMIN_ADJUSTMENT, Credits(1)))
    user_id = await ports.world.user(MAX_BALANCE.micros)
    with pytest.raises(BalanceOutOfRange):
        await ports.ledger.post(Posting(uuid.uuid4(), user_id, EntryKind.ADMIN_ADJUSTMENT, Credits(1)))
    assert await ports.world.balance(user_id) == MAX_BALANCE.micros


async def test_ledger_entries_page_newest_first(ports: Ports) -> None:
    user_id = await ports.world.user(0)
    for micros in (1, 2, 3):
        await ports.ledger.post(Posting(uuid.uuid4(), user_id, EntryKind.ADMIN_ADJUSTMENT, Credits(micros)))
    await ports.uow.commit()
    first = await ports.ledger.entries(user_id, PageRequest(limit=2))
    rest = await ports.ledger.entries(user_id, PageRequest(limit=2, cursor=first.next_cursor))
    assert [e.amount.micros for e in [*first.items, *rest.items]] == [3, 2, 1]
    assert rest.next_cursor is None


async def test_an_idempotency_key_is_claimed_once_replays_its_response_and_refuses_another_body(ports: Ports) -> None:
    store = ports.idempotency
    assert (await store.claim("s", "k", "f1")).outcome is ClaimOutcome.CLAIMED
    await store.save_response("s", "k", b"first answer")
    await ports.uow.commit()
    replay = await store.claim("s", "k", "f1")
    assert (replay.outcome, replay.response) == (ClaimOutcome.REPLAY, b"first answer")
    assert (await store.claim("s", "k", "f2")).outcome is ClaimOutcome.MISMATCH
    assert (await store.claim("other scope", "k", "f2")).outcome is ClaimOutcome.CLAIMED


async def test_a_claim_without_its_response_is_no_replay_and_a_rolled_back_claim_is_free_again(ports: Ports) -> None:
    store = ports.idempotency
    await store.claim("s", "pending", "f")
    await ports.uow.commit()
    assert (await store.claim("s", "pending", "f")).outcome is ClaimOutcome.MISMATCH
    await store.claim("s", "undone", "f")
    await ports.uow.rollback()
    assert (await store.claim("s", "undone", "other")).outcome is ClaimOutcome.CLAIMED


async def test_a_start_is_refused_changing_nothing_while_the_balance_does_not_cover_it(ports: Ports) -> None:
    user_id = await ports.world.user(99)
    with pytest.raises(InsufficientBalance):
        await ports.billing.start(_start(user_id, 100))
    empty = await ports.world.user(0)
    with pytest.raises(InsufficientBalance):
        await ports.billing.start(_start(empty, 0))
    assert (await ports.world.balance(user_id), await ports.world.balance(empty)) == (99, 0)


async def test_the_cost_replaces_the_precharge_exactly_once(ports: Ports) -> None:
    user_id = await ports.world.user(1000)
    start = _start(user_id, 100, reserve=200)
    assert await ports.billing.start(start) == Credits(900)
    assert await ports.billing.settle(_settlement(start, 130)) == Credits(870)
    assert await ports.billing.settle(_settlement(start, 500)) is None
    assert await ports.world.balance(user_id) == 870
    kinds = [e.kind for e in (await ports.ledger.entries(user_id, PageRequest())).items]
    assert kinds == [EntryKind.GENERATION, EntryKind.GENERATION, EntryKind.ADMIN_ADJUSTMENT]


async def test_a_settlement_at_zero_cost_refunds_the_precharge(ports: Ports) -> None:
    user_id = await ports.world.user(1000)
    start = _start(user_id, 100)
    await ports.billing.start(start)
    assert await ports.billing.settle(_settlement(start, 0, GenerationStatus.FAILED)) == Credits(1000)
    (latest, *_) = (await ports.ledger.entries(user_id, PageRequest())).items
    assert (latest.kind, latest.amount) == (EntryKind.REFUND, Credits(100))


async def test_the_reserves_of_running_generations_count_until_they_settle(ports: Ports) -> None:
    user_id = await ports.world.user(1000)
    first = _start(user_id, 100, reserve=850)
    await ports.billing.start(first)
    with pytest.raises(InsufficientBalance):  # 900 left, 850 of it held: 50 do not cover 100
        await ports.billing.start(_start(user_id, 100))
    await ports.billing.settle(_settlement(first, 300))
    await ports.billing.start(_start(user_id, 100))


async def test_a_key_that_reached_its_credit_limit_starts_nothing(ports: Ports) -> None:
    user_id = await ports.world.user(10_000)
    api_key = await ports.world.key(user_id, credit_limit=500)
    first = _start(user_id, 100, api_key=api_key, key_reserve=500)
    await ports.billing.start(first)
    with pytest.raises(KeyCreditLimit):
        await ports.billing.start(_start(user_id, 100, api_key=api_key))
    await ports.billing.settle(_settlement(first, 200))  # the spend is now 200 of 500
    await ports.billing.start(_start(user_id, 100, api_key=api_key))
    assert await ports.world.balance(user_id) == 10_000 - 200 - 100


async def test_the_reaper_settles_expired_leases_from_their_checkpoint(ports: Ports) -> None:
    user_id = await ports.world.user(1000)
    expired = _start(user_id, 100, reserve=100, lease=timedelta(seconds=-1))
    live = _start(user_id, 100)
    await ports.billing.start(expired)
    await ports.billing.start(live)
    await ports.billing.checkpoint(expired.generation_id, 3, expired.lease_expires_at)
    seen: list[Abandoned] = []

    def verdict(abandoned: Abandoned) -> Settlement:
        seen.append(abandoned)
        return _settlement(expired, abandoned.pricing.cost(abandoned.usage).micros, GenerationStatus.FAILED)

    assert await ports.billing.reap(datetime.now(UTC), 10, verdict) == 1
    assert [(a.generation_id, a.usage) for a in seen] == [(expired.generation_id, Usage(10, 3))]
    assert await ports.world.balance(user_id) == 1000 - PRICING.cost(Usage(10, 3)).micros - 100
    assert await ports.billing.reap(datetime.now(UTC), 10, verdict) == 0


async def test_records_total_spend_per_group_largest_first_and_per_key(ports: Ports) -> None:
    ada, bob = await ports.world.user(10_000), await ports.world.user(10_000)
    api_key = await ports.world.key(ada, credit_limit=None)
    for user_id, key, cost in ((ada, None, 100), (ada, api_key, 300), (bob, None, 50)):
        start = _start(user_id, 10, api_key=key)
        await ports.billing.start(start)
        await ports.billing.settle(_settlement(start, cost))
    by_user = await ports.records.usage(UsageGrouping.USER, None, None)
    assert [(t.key, t.requests, t.credits) for t in by_user] == [
        (str(ada), 2, Credits(400)),
        (str(bob), 1, Credits(50)),
    ]
    by_key = await ports.records.usage(UsageGrouping.KEY, None, None)
    assert [(t.key, t.credits) for t in by_key] == [(api_key, Credits(300)), (None, Credits(150))]
    (only,) = await ports.records.key_usage(api_key, None, None)
    assert (only.key, only.requests, only.usage.output_tokens) == ("dr14", 1, 1)
    assert await ports.records.usage(UsageGrouping.MODEL, None, datetime.now(UTC) - timedelta(hours=1)) == []
    (activity,) = await ports.records.key_activity(datetime.now(UTC) - timedelta(hours=1))
    assert (activity.api_key, activity.requests, activity.credits) == (api_key, 1, Credits(300))
    assert await ports.records.last_use(api_key) == activity.last_used_at


async def test_records_search_every_user_by_each_criterion_newest_first_a_page_at_a_time(ports: Ports) -> None:
    ada, bob = await ports.world.user(10_000), await ports.world.user(10_000)
    api_key = await ports.world.key(ada, credit_limit=None)
    starts = [_start(ada, 10), _start(ada, 10, api_key=api_key), _start(bob, 10)]
    for start in starts:
        await ports.billing.start(start)
    await ports.billing.settle(_settlement(starts[0], 20, GenerationStatus.FAILED))
    first, keyed, bobs = (start.generation_id for start in starts)

    async def found(where: GenerationFilter, page: PageRequest = FIRST_PAGE) -> list[uuid.UUID]:
        return [g.id for g in (await ports.records.search(where, page)).items]

    assert await found(GenerationFilter(user_id=ada)) == [keyed, first]
    assert await found(GenerationFilter(api_key=api_key)) == [keyed]
    assert await found(GenerationFilter(user_id=ada, status=GenerationStatus.FAILED)) == [first]
    assert await found(GenerationFilter(user_id=bob, status=GenerationStatus.RUNNING, model="dr14")) == [bobs]
    assert await found(GenerationFilter(user_id=bob, model="gemini-flash")) == []
    assert await found(GenerationFilter(user_id=ada, since=starts[1].created_at)) == [keyed]
    assert await found(GenerationFilter(user_id=ada, until=starts[1].created_at)) == [first]
    one = await ports.records.search(GenerationFilter(user_id=ada), PageRequest(limit=1))
    assert [g.id for g in one.items] == [keyed]
    assert await found(GenerationFilter(user_id=ada), PageRequest(limit=1, cursor=one.next_cursor)) == [first]


async def test_records_count_each_days_generations_per_model_by_outcome(ports: Ports) -> None:
    ada = await ports.world.user(10_000)
    for cost, status in ((100, GenerationStatus.COMPLETED), (20, GenerationStatus.FAILED), (None, None)):
        start = _start(ada, 10)
        await ports.billing.start(start)
        if cost is not None and status is not None:
            await ports.billing.settle(_settlement(start, cost, status))
    now = datetime.now(UTC)
    (today,) = await ports.records.daily_activity(now - timedelta(hours=1), now + timedelta(hours=1))
    assert (today.day, today.model, today.generations, today.failed, today.running) == (now.date(), "dr14", 3, 1, 1)
    assert today.credits == Credits(130)  # the running one counts what it has charged so far: its precharge
    assert await ports.records.daily_activity(now + timedelta(hours=1), now + timedelta(hours=2)) == []
