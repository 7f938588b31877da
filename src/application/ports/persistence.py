from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from domain.credits import Credits
from domain.errors import Conflict
from domain.user import Role, User
from domain.wallet import EntryKind, LedgerEntry

T = TypeVar("T")


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request."


class UnitOfWork(Protocol):
    """The request's transaction. Repositories never commit; whatever is not committed rolls back."""

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def rollback(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """A user with the balance of their wallet."""

    user: User
    balance: Credits


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    user: User
    password_hash: str
    sessions_valid_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewUser:
    id: UUID
    username: str
    email: str | None
    password_hash: str
    role: Role
    created_at: datetime


class UserRepository(Protocol):
    @abstractmethod
    async def add(self, user: NewUser) -> User:
        """Insert the user and an empty wallet. MUST raise UsernameTaken when the name exists (case-insensitive)."""

    @abstractmethod
    async def credentials(self, username: str) -> StoredCredentials | None:
        """Look up by username, case-insensitively."""

    @abstractmethod
    async def account(self, user_id: UUID) -> Account | None: ...

    @abstractmethod
    async def accounts(self, page: PageRequest, *, username_contains: str | None = None) -> Page[Account]:
        """All users (or those whose username contains the text, in any case), oldest first."""

    @abstractmethod
    async def update(self, user_id: UUID, *, role: Role | None, is_active: bool | None) -> bool:
        """Change what is given; False when the user does not exist."""

    @abstractmethod
    async def end_sessions(self, user_id: UUID, valid_after: datetime) -> None:
        """Tokens of the user (and of the user's keys) issued before `valid_after` stop working for good."""

    @abstractmethod
    async def lock_active_admins(self) -> list[UUID]:
        """Every active admin, their rows locked until the transaction ends (a concurrent caller waits, then sees
        what this transaction left)."""

    @abstractmethod
    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    @abstractmethod
    async def promote_or_create_admin(self, user: NewUser) -> User:
        """Create the user as admin, or make the existing user of that name an active admin (hash replaced)."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One balance change to write: the wallet update and its ledger row happen in one statement."""

    entry_id: UUID
    user_id: UUID
    kind: EntryKind
    amount: Credits
    reason: str | None = None
    actor_id: UUID | None = None
    generation_id: UUID | None = None
    api_key: str | None = None


class WalletLedger(Protocol):
    @abstractmethod
    async def post(self, posting: Posting) -> LedgerEntry:
        """Apply a signed, non-zero amount to the wallet and append its ledger row, atomically.

        The balance may go below zero. MUST raise NotFound when the user has no wallet, and BalanceOutOfRange,
        changing nothing, when the balance would leave ±MAX_BALANCE.
        """

    @abstractmethod
    async def entries(self, user_id: UUID, page: PageRequest) -> Page[LedgerEntry]:
        """Newest first."""


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    outcome: ClaimOutcome
    response: bytes | None = None


class IdempotencyStore(Protocol):
    @abstractmethod
    async def claim(self, scope: str, key: str, fingerprint: str) -> IdempotencyClaim:
        """Claim the key inside the current transaction.

        A concurrent claim of the same key waits until the first transaction ends, then sees its stored
        response (REPLAY, same fingerprint), a MISMATCH (another fingerprint), or claims it if the first rolled back.
        """

    @abstractmethod
    async def save_response(self, scope: str, key: str, response: bytes) -> None:
        """Store the response of a claimed key, for the replays of its request."""


class ThrottleCounter(Protocol):
    """Fixed-window counters shared by every instance."""

    @abstractmethod
    async def take(self, limits: Mapping[str, int], window_start: datetime) -> bool:
        """Count one attempt against every subject (each limit >= 1) if each is below its limit, in one atomic
        step; else count nothing and answer False. Concurrent callers never take more than a limit."""

    @abstractmethod
    async def release(self, subjects: Sequence[str], window_start: datetime) -> None:
        """Give back an attempt taken in that window (one that turned out not to count)."""


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    user_id: UUID
    family_id: UUID
    api_key: str | None


class RotationOutcome(Enum):
    ROTATED = "rotated"
    REUSED = "reused"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Rotation:
    outcome: RotationOutcome
    grant: RefreshGrant | None = None


class RefreshTokenStore(Protocol):
    """Opaque single-use refresh tokens; only their SHA-256 is stored."""

    @abstractmethod
    async def issue(self, grant: RefreshGrant, *, now: datetime, expires_at: datetime) -> str:
        """Create a token in the grant's family and return it (the only time its plain text exists)."""

    @abstractmethod
    async def use(self, token: str, now: datetime) -> Rotation:
        """Mark the token used. ROTATED once (concurrent callers: exactly one wins, every other one gets REUSED);
        a used token -> REUSED (with its grant), even once its family is revoked; unknown, or never used and
        expired or revoked -> INVALID."""

    @abstractmethod
    async def revoke_family(self, family_id: UUID, now: datetime) -> None: ...

    @abstractmethod
    async def revoke_user(self, user_id: UUID, now: datetime) -> None:
        """Revoke every family of the user, key-scoped ones included."""

    @abstractmethod
    async def revoke_key(self, api_key: str, now: datetime) -> None:
        """Revoke every family of the key's tokens."""

    @abstractmethod
    async def family_of(self, token: str) -> UUID | None: ...
