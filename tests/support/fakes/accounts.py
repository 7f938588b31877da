"""Users and their wallets, the ledger, Idempotency-Keys, throttles and refresh tokens, in memory."""

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from application.ports.persistence import (
    Account,
    ClaimOutcome,
    IdempotencyClaim,
    IdempotencyStore,
    NewUser,
    Page,
    PageRequest,
    Posting,
    RefreshGrant,
    RefreshTokenStore,
    Rotation,
    RotationOutcome,
    StoredCredentials,
    ThrottleCounter,
    UserRepository,
    WalletLedger,
)
from domain.errors import NotFound
from domain.user import Role, User, UsernameTaken
from domain.wallet import LedgerEntry, Wallet
from tests.support.fakes.state import FakeDatabase, IdempotencyRow, RefreshRow, Tables, UserRow, paged


class FakeUsers(UserRepository):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def add(self, user: NewUser) -> User:
        tables = self._db.tables
        if self._named(tables, user.username) is not None:
            raise UsernameTaken
        created = User(user.id, user.username, user.email, user.role, is_active=True, created_at=user.created_at)
        tables.users[user.id] = UserRow(created, user.password_hash)
        tables.wallets[user.id] = Wallet(user.id)
        return created

    async def credentials(self, username: str) -> StoredCredentials | None:
        row = self._named(self._db.tables, username)
        return None if row is None else StoredCredentials(row.user, row.password_hash, row.sessions_valid_after)

    async def account(self, user_id: UUID) -> Account | None:
        tables = self._db.tables
        row = tables.users.get(user_id)
        return None if row is None else Account(row.user, tables.wallets[user_id].balance)

    async def accounts(self, page: PageRequest, *, username_contains: str | None = None) -> Page[Account]:
        tables = self._db.tables
        needle = (username_contains or "").lower()
        rows = [row for row in tables.users.values() if needle in row.user.username.lower()]
        found = paged(rows, page, lambda row: (row.user.created_at, row.user.id))
        return Page([Account(row.user, tables.wallets[row.user.id].balance) for row in found.items], found.next_cursor)

    async def update(self, user_id: UUID, *, role: Role | None, is_active: bool | None) -> bool:
        row = self._db.tables.users.get(user_id)
        if row is None:
            return False
        row.user = dataclasses.replace(
            row.user,
            role=row.user.role if role is None else role,
            is_active=row.user.is_active if is_active is None else is_active,
        )
        return True

    async def end_sessions(self, user_id: UUID, valid_after: datetime) -> None:
        self._db.tables.users[user_id].sessions_valid_after = valid_after

    async def lock_active_admins(self) -> list[UUID]:
        return [
            row.user.id for row in self._db.tables.users.values() if row.user.role is Role.ADMIN and row.user.is_active
        ]

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        self._db.tables.users[user_id].password_hash = password_hash

    async def promote_or_create_admin(self, user: NewUser) -> User:
        row = self._named(self._db.tables, user.username)
        if row is None:
            return await self.add(user)
        row.user = dataclasses.replace(row.user, role=Role.ADMIN, is_active=True)
        row.password_hash = user.password_hash
        return row.user

    @staticmethod
    def _named(tables: Tables, username: str) -> UserRow | None:
        return next((row for row in tables.users.values() if row.user.username.lower() == username.lower()), None)


def post(tables: Tables, posting: Posting, created_at: datetime) -> LedgerEntry:
    """The wallet change and its ledger row, together: the fakes' one way to move a balance."""
    wallet = tables.wallets.get(posting.user_id)
    if wallet is None:
        raise NotFound("the user has no wallet")
    return record(tables, wallet.adjusted(posting.amount), posting, created_at)


def record(tables: Tables, changed: Wallet, posting: Posting, created_at: datetime) -> LedgerEntry:
    """Store a wallet already changed by `posting.amount`, with the row that says so."""
    tables.wallets[changed.user_id] = changed
    entry = LedgerEntry(
        id=posting.entry_id,
        user_id=posting.user_id,
        kind=posting.kind,
        amount=posting.amount,
        balance_after=changed.balance,
        created_at=created_at,
        generation_id=posting.generation_id,
        api_key=posting.api_key,
        reason=posting.reason,
    )
    tables.ledger.append(entry)
    return entry


class FakeWalletLedger(WalletLedger):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def post(self, posting: Posting) -> LedgerEntry:
        return post(self._db.tables, posting, self._db.clock.now())

    async def entries(self, user_id: UUID, page: PageRequest) -> Page[LedgerEntry]:
        ledger = self._db.tables.ledger
        mine = [(seq, entry) for seq, entry in enumerate(ledger) if entry.user_id == user_id]
        found = paged(mine, page, lambda numbered: numbered[0], newest_first=True)
        return Page([entry for _, entry in found.items], found.next_cursor)


class FakeIdempotencyStore(IdempotencyStore):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def claim(self, scope: str, key: str, fingerprint: str) -> IdempotencyClaim:
        rows = self._db.tables.idempotency
        stored = rows.get((scope, key))
        if stored is None:
            rows[scope, key] = IdempotencyRow(fingerprint, self._db.clock.now())
            return IdempotencyClaim(ClaimOutcome.CLAIMED)
        if stored.fingerprint != fingerprint or stored.response is None:
            return IdempotencyClaim(ClaimOutcome.MISMATCH)
        return IdempotencyClaim(ClaimOutcome.REPLAY, stored.response)

    async def save_response(self, scope: str, key: str, response: bytes) -> None:
        self._db.tables.idempotency[scope, key].response = response


class FakeThrottleCounter(ThrottleCounter):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def take(self, limits: Mapping[str, int], window_start: datetime) -> bool:
        counters = self._db.tables.throttle
        if any(counters.get((subject, window_start), 0) >= limit for subject, limit in limits.items()):
            return False
        for subject in limits:
            counters[subject, window_start] = counters.get((subject, window_start), 0) + 1
        return True

    async def release(self, subjects: Sequence[str], window_start: datetime) -> None:
        counters = self._db.tables.throttle
        for subject in subjects:
            if counters.get((subject, window_start), 0) > 0:
                counters[subject, window_start] -= 1

    def hits(self, subject: str, window_start: datetime) -> int:
        return self._db.tables.throttle.get((subject, window_start), 0)


class FakeRefreshTokenStore(RefreshTokenStore):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def issue(self, grant: RefreshGrant, *, now: datetime, expires_at: datetime) -> str:
        token = secrets.token_urlsafe(16)
        self._db.tables.refresh_tokens[token] = RefreshRow(grant.user_id, grant.family_id, grant.api_key, expires_at)
        return token

    async def use(self, token: str, now: datetime) -> Rotation:
        row = self._db.tables.refresh_tokens.get(token)
        if row is None:
            return Rotation(RotationOutcome.INVALID)
        grant = RefreshGrant(row.user_id, row.family_id, row.api_key)
        if row.used_at is not None:
            return Rotation(RotationOutcome.REUSED, grant)
        if row.revoked_at is not None or row.expires_at <= now:
            return Rotation(RotationOutcome.INVALID)
        row.used_at = now
        return Rotation(RotationOutcome.ROTATED, grant)

    async def revoke_family(self, family_id: UUID, now: datetime) -> None:
        self._revoke([row for row in self._rows() if row.family_id == family_id], now)

    async def revoke_user(self, user_id: UUID, now: datetime) -> None:
        self._revoke([row for row in self._rows() if row.user_id == user_id], now)

    async def revoke_key(self, api_key: str, now: datetime) -> None:
        self._revoke([row for row in self._rows() if row.api_key == api_key], now)

    async def family_of(self, token: str) -> UUID | None:
        row = self._db.tables.refresh_tokens.get(token)
        return None if row is None else row.family_id

    def _rows(self) -> list[RefreshRow]:
        return list(self._db.tables.refresh_tokens.values())

    @staticmethod
    def _revoke(rows: list[RefreshRow], now: datetime) -> None:
        for row in rows:
            if row.revoked_at is None:
                row.revoked_at = now
