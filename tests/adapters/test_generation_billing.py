"""The generation money path on PostgreSQL: atomic pre-charge, settle exactly once, refund, reaper."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.generation_billing import PgGenerationBilling
from adapters.postgres.statements import StatementPool
from adapters.system_clock import SystemClock, UuidGenerator
from application.generations.reaper import ReapExpiredGenerations
from application.ports.billing import GenerationStart, Settlement
from domain.api_key import KeyCreditLimit
from domain.credits import Credits
from domain.generation import GenerationKind, GenerationStatus, UsageSource
from domain.pricing import Pricing, Usage
from domain.wallet import InsufficientBalance
from tests.support.audit import ledger_violations
from tests.support.fakes.metrics import RecordingMetrics
from tests.support.money import balance_of, funded_user, generation_violations, key_row

PRICING = Pricing(100, Credits.whole(20), Credits.whole(20))
LEASE = timedelta(seconds=30)


def _start(user_id: uuid.UUID, precharge: int, input_tokens: int = 5) -> GenerationStart:
    return GenerationStart(
        generation_id=uuid.uuid4(),
        entry_id=uuid.uuid4(),
        user_id=user_id,
        kind=GenerationKind.GENERATION,
        model_id="dr14",
        api_key=None,
        pricing=PRICING,
        input_tokens=input_tokens,
        precharge=Credits(precharge),
        created_at=datetime.now(UTC),
        lease_expires_at=datetime.now(UTC) + LEASE,
    )


def _expired(start: GenerationStart) -> GenerationStart:
    return dataclasses.replace(start, lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))


def _reaper(billing: PgGenerationBilling) -> ReapExpiredGenerations:
    return ReapExpiredGenerations(billing, RecordingMetrics(), SystemClock(), UuidGenerator())


def _settlement(generation_id: uuid.UUID, status: GenerationStatus, usage: Usage, cost: Credits) -> Settlement:
    return Settlement(
        generation_id=generation_id,
        entry_id=uuid.uuid4(),
        status=status,
        usage=usage,
        usage_source=UsageSource.PROVIDER,
        cost=cost,
        output="text",
        finished_at=datetime.now(UTC),
    )


@pytest.fixture
def billing(clean_db: AsyncEngine, statements: StatementPool) -> PgGenerationBilling:
    return PgGenerationBilling(statements)


@pytest.mark.parametrize("affordable", [1, 3, 7])
async def test_concurrent_precharges_never_overspend(
    billing: PgGenerationBilling, clean_db: AsyncEngine, affordable: int
) -> None:
    user_id = await funded_user(clean_db, affordable * 1000)
    results = await asyncio.gather(*(billing.start(_start(user_id, 1000)) for _ in range(50)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == affordable
    assert all(isinstance(r, InsufficientBalance) for r in results if isinstance(r, BaseException))
    assert await balance_of(clean_db, user_id) == 0
    assert await ledger_violations(clean_db) == []


async def _reserved(engine: AsyncEngine, user_id: uuid.UUID) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(text("SELECT reserved_micros FROM wallets WHERE user_id = :u"), {"u": user_id})
        )


@pytest.mark.parametrize("affordable", [1, 3])
async def test_concurrent_starts_leave_room_for_the_reserves_of_the_running_ones(
    billing: PgGenerationBilling, clean_db: AsyncEngine, affordable: int
) -> None:
    """Each start takes 1000 and reserves 9000 for its completion: the balance covers `affordable` of them."""
    user_id = await funded_user(clean_db, affordable * 10_000)
    starts = [dataclasses.replace(_start(user_id, 1000), reserve=Credits(9000)) for _ in range(40)]
    results = await asyncio.gather(*(billing.start(start) for start in starts), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == affordable
    assert all(isinstance(r, InsufficientBalance) for r in results if isinstance(r, BaseException))
    assert await _reserved(clean_db, user_id) == affordable * 9000
    assert await ledger_violations(clean_db) == []


async def test_every_ending_releases_exactly_the_reserve(billing: PgGenerationBilling, clean_db: AsyncEngine) -> None:
    """Completion, refund, reaper; and a late settlement after the reaper releases nothing twice."""
    user_id = await funded_user(clean_db, 10**9)
    completed, refunded, reaped = (dataclasses.replace(_start(user_id, 1000), reserve=Credits(r)) for r in (7, 11, 13))
    for start in (completed, refunded, reaped):
        await billing.start(start if start is not reaped else _expired(start))
    assert await _reserved(clean_db, user_id) == 31
    await billing.settle(_settlement(completed.generation_id, GenerationStatus.COMPLETED, Usage(5, 3), Credits(1600)))
    assert await _reserved(clean_db, user_id) == 24
    await billing.settle(_settlement(refunded.generation_id, GenerationStatus.FAILED, Usage(5, 0), Credits.zero()))
    assert await _reserved(clean_db, user_id) == 13
    assert await _reaper(billing)() == 1
    assert await _reserved(clean_db, user_id) == 0
    late = await billing.settle(_settlement(reaped.generation_id, GenerationStatus.COMPLETED, Usage(5, 9), Credits(1)))
    assert late is None
    assert await _reserved(clean_db, user_id) == 0
    assert await ledger_violations(clean_db) == []


async def test_nothing_starts_on_a_zero_or_negative_balance(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 0)
    with pytest.raises(InsufficientBalance):
        await billing.start(_start(user_id, 0))
    async with clean_db.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM generations")) == 0


async def test_settlement_charges_the_difference_exactly_once(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 10_000_000)
    start = _start(user_id, 1_000_000)
    await billing.start(start)
    usage = Usage(5, 50)
    settlement = _settlement(start.generation_id, GenerationStatus.COMPLETED, usage, PRICING.cost(usage))
    results = await asyncio.gather(*(billing.settle(settlement) for _ in range(10)))
    assert sum(r is not None for r in results) == 1
    assert await balance_of(clean_db, user_id) == 10_000_000 - PRICING.cost(usage).micros
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


CACHED_PRICING = Pricing(100, Credits.whole(20), Credits.whole(20), cached_input_credits=Credits.whole(2))


async def test_a_cached_prompt_cheaper_than_its_precharge_gets_the_difference_back(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    """Pre-charged 42 prompt tokens at input_credits; the provider served 41 from its cache: the `settle` row
    gives back what the cache saved, the key's spend drops to the cost, and every count is stored."""
    user_id = await funded_user(clean_db, 100_000_000)
    api_key = await key_row(clean_db, user_id, credit_limit=None)
    precharge = CACHED_PRICING.input_cost(42)
    start = dataclasses.replace(
        _key_start(user_id, api_key, precharge.micros, precharge.micros + 4_000_000),
        pricing=CACHED_PRICING,
        input_tokens=42,
        reserve=CACHED_PRICING.output_cost(20),
    )
    await billing.start(start)
    usage = Usage(42, 2, cached_input_tokens=41, reasoning_tokens=1)
    cost = CACHED_PRICING.cost(usage)
    assert (str(precharge), str(cost)) == ("8.4", "1.42")
    balance = await billing.settle(_settlement(start.generation_id, GenerationStatus.COMPLETED, usage, cost))
    assert balance == Credits(100_000_000) - cost
    assert await _spent(clean_db, api_key) == cost.micros
    async with clean_db.connect() as connection:
        entries = (await connection.execute(text("SELECT kind, phase, amount FROM ledger_entries ORDER BY seq"))).all()
        stored = (
            await connection.execute(
                text(
                    "SELECT input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens,"
                    " cost FROM generations"
                )
            )
        ).one()
    assert [tuple(e) for e in entries][-2:] == [
        ("generation", "precharge", -precharge.micros),
        ("generation", "settle", (precharge - cost).micros),
    ]
    assert tuple(stored) == (42, 2, 41, 0, 1, cost.micros)
    assert await _reserved(clean_db, user_id) == 0
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_the_database_refuses_usage_parts_beyond_their_totals(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 10_000_000)
    start = _start(user_id, 1_000_000)
    await billing.start(start)
    async with clean_db.connect() as connection:
        for change in ("cached_input_tokens = 4, cache_write_tokens = 2", "reasoning_tokens = 1"):
            with pytest.raises(IntegrityError):
                await connection.execute(text(f"UPDATE generations SET {change}"))  # input 5, output 0
            await connection.rollback()


async def test_a_failure_before_any_token_refunds_the_precharge(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 5_000_000)
    start = _start(user_id, 1_000_000)
    await billing.start(start)
    await billing.settle(_settlement(start.generation_id, GenerationStatus.FAILED, Usage(5, 0), Credits.zero()))
    assert await balance_of(clean_db, user_id) == 5_000_000
    async with clean_db.connect() as connection:
        kinds = (await connection.execute(text("SELECT kind, phase FROM ledger_entries ORDER BY seq"))).all()
    assert [tuple(k) for k in kinds][-2:] == [("generation", "precharge"), ("refund", "refund")]
    assert await generation_violations(clean_db) == []


async def test_a_settlement_may_take_the_balance_below_zero(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 1_000_000)
    start = _start(user_id, 1_000_000)
    await billing.start(start)
    usage = Usage(5, 1000)
    balance = await billing.settle(
        _settlement(start.generation_id, GenerationStatus.COMPLETED, usage, PRICING.cost(usage))
    )
    assert balance is not None
    assert balance < Credits.zero()
    assert await ledger_violations(clean_db) == []


async def test_the_reaper_settles_expired_leases_with_the_checkpointed_tokens(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 10_000_000)
    start = _start(user_id, 1_000_000, input_tokens=5)
    await billing.start(start)
    await billing.checkpoint(start.generation_id, 32, datetime.now(UTC) - timedelta(seconds=1))
    reaped = await asyncio.gather(*(_reaper(billing)() for _ in range(3)))
    assert sum(reaped) == 1
    async with clean_db.connect() as connection:
        row = (await connection.execute(text("SELECT status, cost, output_tokens, error_code FROM generations"))).one()
    assert row.status == "failed"
    assert row.output_tokens == 32
    assert row.cost == PRICING.cost(Usage(5, 32)).micros
    assert await generation_violations(clean_db) == []
    assert await ledger_violations(clean_db) == []


async def test_a_late_settlement_after_the_reaper_changes_nothing(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 10_000_000)
    start = _start(user_id, 1_000_000)
    await billing.start(_expired(start))
    assert await _reaper(billing)() == 1
    before = await balance_of(clean_db, user_id)
    late = await billing.settle(_settlement(start.generation_id, GenerationStatus.COMPLETED, Usage(5, 9), Credits(1)))
    assert late is None
    assert await balance_of(clean_db, user_id) == before


async def _spent(engine: AsyncEngine, api_key: str) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(text("SELECT spent_micros FROM api_keys WHERE api_key = :k"), {"k": api_key})
        )


def _key_start(user_id: uuid.UUID, api_key: str, precharge: int, reserve: int) -> GenerationStart:
    return dataclasses.replace(_start(user_id, precharge), api_key=api_key, key_reserve=Credits(reserve))


@pytest.mark.parametrize("allowed", [1, 4])
async def test_a_key_credit_limit_is_atomic_with_the_precharge(
    billing: PgGenerationBilling, clean_db: AsyncEngine, allowed: int
) -> None:
    """Z6 at the repository: 60 concurrent starts on a key whose limit holds `allowed` reserves."""
    user_id = await funded_user(clean_db, 10**9)
    api_key = await key_row(clean_db, user_id, credit_limit=allowed * 5000)
    results = await asyncio.gather(
        *(billing.start(_key_start(user_id, api_key, 1000, 5000)) for _ in range(60)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == allowed
    assert all(isinstance(r, KeyCreditLimit) for r in results if isinstance(r, BaseException))
    assert await _spent(clean_db, api_key) == allowed * 5000
    assert await balance_of(clean_db, user_id) == 10**9 - allowed * 1000
    assert await ledger_violations(clean_db) == []


async def test_settle_replaces_the_key_reserve_by_the_cost_and_a_refund_frees_it(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 10**9)
    api_key = await key_row(clean_db, user_id, credit_limit=None)
    first, second = _key_start(user_id, api_key, 1000, 5000), _key_start(user_id, api_key, 1000, 5000)
    await billing.start(first)
    await billing.start(second)
    assert await _spent(clean_db, api_key) == 10_000
    await billing.settle(_settlement(first.generation_id, GenerationStatus.COMPLETED, Usage(5, 3), Credits(1600)))
    assert await _spent(clean_db, api_key) == 6600
    await billing.settle(_settlement(second.generation_id, GenerationStatus.FAILED, Usage(5, 0), Credits.zero()))
    assert await _spent(clean_db, api_key) == 1600
    async with clean_db.connect() as connection:
        ledger = await connection.scalar(
            text("SELECT -SUM(amount) FROM ledger_entries WHERE api_key = :k"), {"k": api_key}
        )
    assert ledger == 1600
    assert await ledger_violations(clean_db) == []


async def test_an_unfunded_wallet_is_insufficient_balance_even_for_a_key(
    billing: PgGenerationBilling, clean_db: AsyncEngine
) -> None:
    user_id = await funded_user(clean_db, 0)
    api_key = await key_row(clean_db, user_id, credit_limit=10**6)
    with pytest.raises(InsufficientBalance):
        await billing.start(_key_start(user_id, api_key, 1000, 5000))
    assert await _spent(clean_db, api_key) == 0


async def test_a_checkpoint_without_the_database_returns_so_the_stream_goes_on() -> None:
    async with StatementPool.opened("postgresql://postgres@127.0.0.1:9/nowhere", size=1, timeout_seconds=2) as pool:
        await PgGenerationBilling(pool).checkpoint(uuid.uuid4(), 5, datetime.now(UTC) + LEASE)
