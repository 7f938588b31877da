"""The ledger on PostgreSQL: append-only, one row per balance change, balance == Σ entries under concurrency, and
the same answers as the pure wallet model for any sequence of operations (RELIABILITY M1, M2, M10)."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from adapters.postgres.generation_billing import PgGenerationBilling
from adapters.postgres.statements import StatementPool
from adapters.postgres.tables import ledger_entries, wallets
from adapters.postgres.wallet_ledger import PgWalletLedger
from application.ports.billing import GenerationStart, Settlement
from application.ports.persistence import PageRequest, Posting
from domain.credits import MAX_MICROS, MIN_MICROS, Credits
from domain.errors import InvalidInput, NotFound
from domain.generation import GenerationKind, GenerationStatus, UsageSource
from domain.pricing import Pricing, Usage
from domain.wallet import MAX_BALANCE, BalanceOutOfRange, EntryKind, InsufficientBalance, Wallet
from tests.support.audit import ledger_violations
from tests.support.money import balance_of, funded_user

PRICING = Pricing(10, Credits(7), Credits(13), cached_input_credits=Credits(1), cache_write_credits=Credits(9))


async def _post(engine: AsyncEngine, user_id: uuid.UUID, micros: int) -> None:
    async with async_sessionmaker(engine)() as session:
        await PgWalletLedger(session).post(
            Posting(entry_id=uuid.uuid4(), user_id=user_id, kind=EntryKind.ADMIN_ADJUSTMENT, amount=Credits(micros))
        )
        await session.commit()


async def test_concurrent_postings_keep_the_balance_equal_to_the_ledger(clean_db: AsyncEngine) -> None:
    user_id = await funded_user(clean_db, 0)
    amounts = [(-1) ** i * (i + 1) * 1000 for i in range(20)]
    await asyncio.gather(*(_post(clean_db, user_id, amount) for amount in amounts))
    assert await balance_of(clean_db, user_id) == sum(amounts)
    assert await ledger_violations(clean_db) == []


async def test_posting_to_a_missing_wallet_is_not_found(clean_db: AsyncEngine) -> None:
    with pytest.raises(NotFound):
        await _post(clean_db, uuid.uuid4(), 5)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_entries SET amount = amount + 1", "DELETE FROM ledger_entries", "TRUNCATE ledger_entries"],
)
async def test_ledger_rows_cannot_be_changed_or_removed(clean_db: AsyncEngine, statement: str) -> None:
    await funded_user(clean_db, 5_000)
    with pytest.raises(DBAPIError, match="append-only"):
        async with clean_db.begin() as connection:
            await connection.execute(text(statement))
    async with clean_db.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM ledger_entries")) == 1


async def test_entries_page_newest_first(clean_db: AsyncEngine) -> None:
    user_id = await funded_user(clean_db, 0)
    for amount in (1, 2, 3):
        await _post(clean_db, user_id, amount)
    async with async_sessionmaker(clean_db)() as session:
        ledger = PgWalletLedger(session)
        first = await ledger.entries(user_id, PageRequest(limit=2))
        second = await ledger.entries(user_id, PageRequest(limit=2, cursor=first.next_cursor))
    assert [e.amount.micros for e in first.items] == [3, 2]
    assert [e.amount.micros for e in second.items] == [1]
    assert second.next_cursor is None


@pytest.mark.parametrize("cursor", ["%%%", "WzFd=x", "WyJhIl0", "WzkyMjMzNzIwMzY4NTQ3NzU4MDhd"])
async def test_a_forged_entries_cursor_is_invalid_input(clean_db: AsyncEngine, cursor: str) -> None:
    async with async_sessionmaker(clean_db)() as session:
        with pytest.raises(InvalidInput) as raised:
            await PgWalletLedger(session).entries(uuid.uuid4(), PageRequest(cursor=cursor))
    assert raised.value.field == "cursor"


async def test_a_posting_returns_its_entry_and_touches_the_wallet(clean_db: AsyncEngine) -> None:
    user_id = await funded_user(clean_db, 10)
    touched_before = await _wallet_updated_at(clean_db, user_id)
    posting = Posting(
        entry_id=uuid.uuid4(),
        user_id=user_id,
        kind=EntryKind.ADMIN_ADJUSTMENT,
        amount=Credits(-25),
        reason="chargeback",
        actor_id=uuid.uuid4(),
        api_key="ak_test",
    )
    async with async_sessionmaker(clean_db)() as session:
        entry = await PgWalletLedger(session).post(posting)
        await session.commit()
        actor_id = await session.scalar(select(ledger_entries.c.actor_id).where(ledger_entries.c.id == entry.id))
    assert (entry.id, entry.user_id, entry.kind) == (posting.entry_id, user_id, EntryKind.ADMIN_ADJUSTMENT)
    assert (entry.amount, entry.balance_after) == (Credits(-25), Credits(-15))
    assert (entry.reason, entry.api_key, entry.generation_id) == ("chargeback", "ak_test", None)
    assert actor_id == posting.actor_id
    assert await _wallet_updated_at(clean_db, user_id) > touched_before


async def _wallet_updated_at(engine: AsyncEngine, user_id: uuid.UUID) -> datetime:
    async with engine.connect() as connection:
        touched = await connection.scalar(select(wallets.c.updated_at).where(wallets.c.user_id == user_id))
    assert isinstance(touched, datetime)
    return touched


operations = st.lists(
    st.one_of(
        st.tuples(st.just("adjust"), st.integers(-5_000, 5_000).filter(bool)),
        st.tuples(st.just("start"), st.integers(0, 400), st.integers(0, 400)),
        st.tuples(
            st.just("finish"),
            st.integers(0, 10),
            st.floats(0, 1),
            st.sampled_from(["ok", "fail"]),
            st.floats(0, 1),
            st.floats(0, 1),
        ),
    ),
    max_size=30,
)


@dataclass
class _Running:
    start: GenerationStart
    max_tokens: int


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_postgres_agrees_with_the_wallet_model(
    clean_db: AsyncEngine, statements: StatementPool, steps: list[tuple[object, ...]]
) -> None:
    """Generations overlap: each holds its output reserve until it finishes, in any order."""
    user_id = await funded_user(clean_db, 0)
    billing = PgGenerationBilling(statements)
    model = Wallet(user_id)
    running: list[_Running] = []
    for step in steps:
        match step:
            case ("adjust", int(micros)):
                await _post(clean_db, user_id, micros)
                model = model.adjusted(Credits(micros))
            case ("start", int(tokens_in), int(max_tokens)):
                model = await _start(billing, model, running, tokens_in, max_tokens)
            case ("finish", int(index), float(share), str(ending), float(cached), float(written)) if running:
                run = running.pop(index % len(running))
                model = await _finish(billing, model, run, share, ending, (cached, written))
        assert await balance_of(clean_db, user_id) == model.balance.micros
    assert await ledger_violations(clean_db) == []


async def _start(
    billing: PgGenerationBilling, model: Wallet, running: list[_Running], tokens_in: int, max_tokens: int
) -> Wallet:
    precharge, reserve = PRICING.input_cost(tokens_in), PRICING.output_cost(max_tokens)
    start = GenerationStart(
        generation_id=uuid.uuid4(),
        entry_id=uuid.uuid4(),
        user_id=model.user_id,
        kind=GenerationKind.GENERATION,
        model_id="m",
        api_key=None,
        pricing=PRICING,
        input_tokens=tokens_in,
        precharge=precharge,
        created_at=datetime.now(UTC),
        lease_expires_at=datetime.now(UTC) + timedelta(seconds=30),
        reserve=reserve,
    )
    try:
        await billing.start(start)
    except InsufficientBalance:
        assert not model.can_start(precharge)
        return model
    running.append(_Running(start, max_tokens))
    return model.precharged(precharge, reserve)


async def _finish(
    billing: PgGenerationBilling,
    model: Wallet,
    run: _Running,
    share: float,
    ending: str,
    cache_shares: tuple[float, float],
) -> Wallet:
    """`cache_shares`: how much of the prompt the provider read from its cache, and how much of the rest it wrote
    to it (a cached prompt costs less than its pre-charge: the settlement gives credits back)."""
    start = run.start
    cached = int(start.input_tokens * cache_shares[0])
    written = int((start.input_tokens - cached) * cache_shares[1])
    output_tokens = int(run.max_tokens * share) if ending == "ok" else 0
    usage = Usage(start.input_tokens, output_tokens, cached_input_tokens=cached, cache_write_tokens=written)
    cost = PRICING.cost(usage) if ending == "ok" else Credits.zero()
    status = GenerationStatus.COMPLETED if ending == "ok" else GenerationStatus.FAILED
    await billing.settle(
        Settlement(
            start.generation_id, uuid.uuid4(), status, usage, UsageSource.PROVIDER, cost, None, datetime.now(UTC)
        )
    )
    return model.settled(start.precharge, start.reserve, cost)


@pytest.mark.parametrize(
    ("balance", "amount"),
    [(MAX_BALANCE.micros, 1), (-MAX_BALANCE.micros, -1), (MAX_BALANCE.micros, MAX_MICROS), (0, MIN_MICROS)],
)
async def test_a_posting_past_the_balance_bound_changes_nothing(
    clean_db: AsyncEngine, balance: int, amount: int
) -> None:
    user_id = await funded_user(clean_db, balance)
    with pytest.raises(BalanceOutOfRange):
        await _post(clean_db, user_id, amount)
    assert await balance_of(clean_db, user_id) == balance
    assert await ledger_violations(clean_db) == []
