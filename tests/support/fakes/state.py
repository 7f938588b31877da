"""The in-memory database the fakes share, and its unit of work.

One `Tables` holds every row, so a fake reads what another wrote (a wallet the user repository created, the
generations the billing recorded). Like the request's transaction, writes are visible at once and undone by
`rollback()` unless `commit()`ted; the money path's fakes write through `autocommit`, as their statements commit
on their own."""

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from application.ports.comparison import TextReference
from application.ports.persistence import Page, PageRequest, UnitOfWork
from domain.api_key import ApiKey
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.errors import InvalidInput
from domain.generation import Generation
from domain.pricing import Pricing
from domain.typeid import TypeProfile
from domain.user import User
from domain.wallet import LedgerEntry, Wallet
from tests.support.fakes.clock import FrozenClock

T = TypeVar("T")


@dataclass
class UserRow:
    user: User
    password_hash: str
    sessions_valid_after: datetime | None = None


@dataclass
class KeyRow:
    key: ApiKey
    secret_ciphertext: bytes
    sessions_valid_after: datetime | None = None
    spent: Credits = field(default_factory=Credits.zero)
    """Settled costs plus the reserves of its running generations (the credit limit is checked against it)."""


@dataclass
class GenerationRow:
    generation: Generation
    pricing: Pricing
    precharged: Credits
    key_reserved: Credits
    wallet_reserved: Credits
    lease_expires_at: datetime


@dataclass
class IdempotencyRow:
    fingerprint: str
    created_at: datetime
    response: bytes | None = None


@dataclass
class RefreshRow:
    user_id: UUID
    family_id: UUID
    api_key: str | None
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass
class Tables:
    users: dict[UUID, UserRow] = field(default_factory=dict)
    wallets: dict[UUID, Wallet] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    idempotency: dict[tuple[str, str], IdempotencyRow] = field(default_factory=dict)
    throttle: dict[tuple[str, datetime], int] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshRow] = field(default_factory=dict)
    models: dict[str, CatalogModel] = field(default_factory=dict)
    profiles: dict[str, TypeProfile] = field(default_factory=dict)
    keys: dict[str, KeyRow] = field(default_factory=dict)
    nonces: dict[tuple[str, str], datetime] = field(default_factory=dict)
    references: dict[UUID, TextReference] = field(default_factory=dict)
    generations: dict[UUID, GenerationRow] = field(default_factory=dict)


class FakeDatabase:
    """`tables` is what the current transaction sees; `committed` what survives a rollback."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.tables = Tables()
        self.committed = Tables()

    def autocommit(self, change: Callable[[Tables], T]) -> T:
        """Apply a self-committing statement: to the committed rows and to what the transaction sees. `change`
        must raise before it changes anything."""
        result = change(self.committed)
        change(self.tables)
        return result


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.commits = 0

    async def commit(self) -> None:
        self._db.committed = copy.deepcopy(self._db.tables)
        self.commits += 1

    async def rollback(self) -> None:
        self._db.tables = copy.deepcopy(self._db.committed)


def paged(
    items: Iterable[T], page: PageRequest, sort_key: Callable[[T], Any], *, newest_first: bool = False
) -> Page[T]:
    """A page of the sorted items; the cursor is the offset of the next one (opaque to the use cases)."""
    ordered = sorted(items, key=sort_key, reverse=newest_first)
    start = 0
    if page.cursor is not None:
        if not page.cursor.isdigit():
            raise InvalidInput("invalid cursor", field="cursor")
        start = int(page.cursor)
    end = start + page.limit
    return Page(items=ordered[start:end], next_cursor=str(end) if end < len(ordered) else None)
