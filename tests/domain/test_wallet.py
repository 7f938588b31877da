"""The wallet rules as a state machine: whatever sequence of operations, the balance is the sum of the ledger."""

import uuid

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.credits import MAX_MICROS, MIN_MICROS, Credits, InvalidAmount
from domain.pricing import MAX_PRICE_MICROS, MAX_TOKENS, Pricing, Usage
from domain.wallet import MAX_BALANCE, BalanceOutOfRange, InsufficientBalance, Wallet

amounts = st.integers(min_value=-(10**12), max_value=10**12).map(Credits)
costs = st.integers(min_value=0, max_value=10**12).map(Credits)


class WalletMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.wallet = Wallet(uuid.uuid4())
        self.entries: list[Credits] = []

    @rule(amount=amounts)
    def adjust(self, amount: Credits) -> None:
        if amount.is_zero():
            with pytest.raises(InvalidAmount):
                self.wallet.adjusted(amount)
            return
        self.wallet = self.wallet.adjusted(amount)
        self.entries.append(amount)

    @rule(cost=costs)
    def precharge(self, cost: Credits) -> None:
        allowed = self.wallet.balance.is_positive() and self.wallet.balance >= cost
        if not allowed:
            with pytest.raises(InsufficientBalance):
                self.wallet.precharged(cost)
            return
        self.wallet = self.wallet.precharged(cost)
        self.entries.append(-cost)

    @invariant()
    def balance_is_the_sum_of_entries(self) -> None:
        assert self.wallet.balance.micros == sum(entry.micros for entry in self.entries)


TestWalletMachine = WalletMachine.TestCase
TestWalletMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


class OverdraftMachine(RuleBasedStateMachine):
    """Generations run concurrently: each holds its output reserve until it ends, charged anything up to it.
    However they interleave, the balance less the reserves never falls below minus the largest single reserve,
    so once all have ended the overdraft is at most one completion."""

    def __init__(self) -> None:
        super().__init__()
        self.wallet = Wallet(uuid.uuid4())
        self.entries: list[Credits] = []
        self.running: list[tuple[Credits, Credits]] = []
        self.largest_reserve = Credits.zero()

    @rule(amount=st.integers(1, 10**9).map(Credits))
    def credit(self, amount: Credits) -> None:
        self.wallet = self.wallet.adjusted(amount)
        self.entries.append(amount)

    @rule(precharge=st.integers(0, 10**8).map(Credits), reserve=st.integers(0, 10**10).map(Credits))
    def start(self, precharge: Credits, reserve: Credits) -> None:
        available = self.wallet.balance - self.wallet.reserved
        if not (available.is_positive() and available >= precharge):
            with pytest.raises(InsufficientBalance):
                self.wallet.precharged(precharge, reserve)
            return
        self.wallet = self.wallet.precharged(precharge, reserve)
        self.entries.append(-precharge)
        self.running.append((precharge, reserve))
        self.largest_reserve = max(self.largest_reserve, reserve)

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        if not self.running:
            return
        precharge, reserve = self.running.pop(data.draw(st.integers(0, len(self.running) - 1)))
        output = Credits(data.draw(st.integers(0, reserve.micros)))
        cost = data.draw(st.sampled_from([precharge + output, Credits.zero()]))  # charged, or refunded
        self.wallet = self.wallet.settled(precharge, reserve, cost)
        if cost != precharge:
            self.entries.append(precharge - cost)

    @invariant()
    def the_overdraft_is_at_most_one_completion(self) -> None:
        assert self.wallet.balance - self.wallet.reserved >= -self.largest_reserve
        assert self.wallet.balance.micros == sum(entry.micros for entry in self.entries)
        assert self.wallet.reserved.micros == sum(reserve.micros for _, reserve in self.running)
        if not self.running:
            assert self.wallet.balance >= -self.largest_reserve


TestOverdraftMachine = OverdraftMachine.TestCase
TestOverdraftMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_running_reserves_refuse_a_start_the_balance_alone_would_allow() -> None:
    wallet = Wallet(uuid.uuid4(), Credits.whole(1)).precharged(Credits(100_000), Credits.whole(10))
    assert wallet.balance == Credits(900_000)
    assert not wallet.can_start(Credits(0))
    with pytest.raises(InsufficientBalance):
        wallet.precharged(Credits(0), Credits.whole(10))
    assert wallet.settled(Credits(100_000), Credits.whole(10), Credits(100_000)).can_start(Credits(1))


def test_a_paid_operation_never_starts_on_a_zero_or_negative_balance() -> None:
    for balance in (Credits(0), Credits(-5)):
        assert not Wallet(uuid.uuid4(), balance).can_start(Credits(0))


def test_a_paid_operation_starts_when_the_balance_covers_the_cost() -> None:
    wallet = Wallet(uuid.uuid4(), Credits(10))
    assert wallet.can_start(Credits(10))
    assert not wallet.can_start(Credits(11))


@settings(max_examples=2000)
@given(
    balance=st.integers(-MAX_BALANCE.micros, MAX_BALANCE.micros),
    amount=st.integers(MIN_MICROS, MAX_MICROS).filter(bool),
)
@example(balance=MAX_BALANCE.micros, amount=1)
@example(balance=-MAX_BALANCE.micros, amount=-1)
@example(balance=0, amount=MAX_BALANCE.micros)
@example(balance=MAX_BALANCE.micros, amount=MIN_MICROS)
@example(balance=9_000_000_000_000_000_000 - MAX_BALANCE.micros, amount=9_000_000_000_000_000_000)
def test_an_adjustment_keeps_the_balance_within_its_bound_or_changes_nothing(balance: int, amount: int) -> None:
    wallet = Wallet(uuid.uuid4(), Credits(balance))
    if abs(balance + amount) <= MAX_BALANCE.micros:
        assert wallet.adjusted(Credits(amount)).balance == Credits(balance + amount)
    else:
        with pytest.raises(BalanceOutOfRange) as raised:
            wallet.adjusted(Credits(amount))
        assert raised.value.code == "balance_out_of_range"
        assert raised.value.field == "amount"


def test_the_balance_bound_leaves_room_in_bigint_for_the_largest_cost_and_reserve() -> None:
    most = Pricing(1, Credits(MAX_PRICE_MICROS), Credits(MAX_PRICE_MICROS))
    largest = most.cost(Usage(MAX_TOKENS, MAX_TOKENS)).micros
    assert MAX_BALANCE.micros + 2 * largest <= MAX_MICROS
    assert -MAX_BALANCE.micros - 2 * largest >= MIN_MICROS
