"""The wallet rules as a state machine: whatever sequence of operations, the balance is the sum of the ledger."""

import uuid

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.credits import Credits, InvalidAmount
from domain.errors import InsufficientBalance
from domain.wallet import Wallet

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


def test_a_paid_operation_never_starts_on_a_zero_or_negative_balance() -> None:
    for balance in (Credits(0), Credits(-5)):
        assert not Wallet(uuid.uuid4(), balance).can_start(Credits(0))


def test_a_paid_operation_starts_when_the_balance_covers_the_cost() -> None:
    wallet = Wallet(uuid.uuid4(), Credits(10))
    assert wallet.can_start(Credits(10))
    assert not wallet.can_start(Credits(11))
