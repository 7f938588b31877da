"""The wallet and its ledger: every change of a balance is one immutable entry, and the balance is their sum."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.credits import Credits, InvalidAmount
from domain.errors import InvalidInput, NotEnoughCredit

MAX_BALANCE = Credits(10**18)
"""A balance stays within ±1,000,000,000,000 credits: far inside BIGINT, so that the largest cost, pre-charge or
reserve added to any balance still fits."""


class InsufficientBalance(NotEnoughCredit):
    code = "insufficient_balance"
    default_detail = "The balance does not cover this request."


class BalanceOutOfRange(InvalidInput):
    code = "balance_out_of_range"
    default_detail = "The balance would leave the range of ±1,000,000,000,000 credits."

    def __init__(self) -> None:
        super().__init__(field="amount")


class EntryKind(StrEnum):
    SIGNUP = "signup"
    ADMIN_ADJUSTMENT = "admin_adjustment"
    GENERATION = "generation"
    COMPARISON = "comparison"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: UUID
    user_id: UUID
    kind: EntryKind
    amount: Credits
    balance_after: Credits
    created_at: datetime
    generation_id: UUID | None = None
    api_key: str | None = None
    reason: str | None = None


def require_non_zero(amount: Credits) -> Credits:
    if amount.is_zero():
        raise InvalidAmount("an adjustment of 0 changes nothing", field="amount")
    return amount


@dataclass(frozen=True, slots=True)
class Wallet:
    """A pure model of the rules; PostgreSQL applies the same rules in one statement per change."""

    user_id: UUID
    balance: Credits = field(default_factory=Credits.zero)
    reserved: Credits = field(default_factory=Credits.zero)
    """What the running operations may still charge for their completions."""

    def can_start(self, cost: Credits) -> bool:
        """A paid operation starts only while the balance less the reserves of the running ones is positive and
        covers its pre-charge: together they overdraw by at most the one completion admitted last."""
        available = self.balance - self.reserved
        return available.is_positive() and available >= cost

    def adjusted(self, amount: Credits) -> "Wallet":
        """An admin adjustment: signed, never zero; the balance may end below zero, never past ±MAX_BALANCE."""
        balance = self.balance.micros + require_non_zero(amount).micros
        if abs(balance) > MAX_BALANCE.micros:
            raise BalanceOutOfRange
        return Wallet(self.user_id, Credits(balance), self.reserved)

    def precharged(self, cost: Credits, reserve: Credits | None = None) -> "Wallet":
        """Start an operation: take its pre-charge and hold `reserve`, the most its completion can cost."""
        if not self.can_start(cost):
            raise InsufficientBalance
        return Wallet(self.user_id, self.balance - cost, self.reserved + (reserve or Credits.zero()))

    def settled(self, precharge: Credits, reserve: Credits, cost: Credits) -> "Wallet":
        """End an operation: its cost replaces its pre-charge, its reserve is released; the balance may go negative."""
        return Wallet(self.user_id, self.balance - (cost - precharge), self.reserved - reserve)
