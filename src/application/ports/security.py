from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.api_key import KeyRevoked, SubscriptionInactive, SubscriptionStatus
from domain.errors import Unauthenticated
from domain.user import Principal, Role


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    default_detail = "The token is invalid, expired or revoked."


class PasswordHasher(Protocol):
    """Slow by design: implementations run the work off the event loop."""

    @abstractmethod
    async def hash(self, password: str) -> str: ...

    @abstractmethod
    async def verify(self, password_hash: str, password: str) -> bool:
        """False on a wrong password or an unreadable hash; never raises for those."""

    @abstractmethod
    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one verify, for unknown usernames (no timing oracle)."""

    @abstractmethod
    def needs_rehash(self, password_hash: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: UUID
    role: Role
    token_id: str
    issued_at: datetime
    expires_at: datetime
    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_in: int


class AccessTokens(Protocol):
    @abstractmethod
    def issue(self, *, user_id: UUID, role: Role, api_key: str | None, now: datetime) -> IssuedAccessToken: ...

    @abstractmethod
    def decode(self, token: str, now: datetime) -> AccessClaims:
        """MUST raise InvalidToken for any token this service did not issue, or that expired."""


class IdentityProvider(Protocol):
    """The principal of the current request, from its bearer token, checked against the database."""

    @abstractmethod
    async def current(self) -> Principal:
        """MUST raise Unauthenticated (or InvalidToken) when there is no valid token or the user is inactive."""


@dataclass(frozen=True, slots=True)
class Standing:
    """A principal as stored now, with what decides whether a token issued to it still works."""

    principal: Principal
    subscription: SubscriptionStatus | None = None
    """The key's, for a key-scoped principal."""
    sessions_valid_after: datetime | None = None
    """Tokens issued before it were ended (by a deactivation, a demotion, a suspension...) and stay dead."""

    def admit(self, issued_at: datetime) -> Principal:
        """The principal, for a token issued at `issued_at`: 401 `key_revoked` for a revoked key, 403
        `subscription_inactive` for a suspended or expired one, 401 `invalid_token` for an ended session."""
        if self.subscription is SubscriptionStatus.REVOKED:
            raise KeyRevoked
        if self.subscription is not None and self.subscription is not SubscriptionStatus.ACTIVE:
            raise SubscriptionInactive
        if self.sessions_valid_after is not None and issued_at < self.sessions_valid_after:
            raise InvalidToken
        return self.principal


class PrincipalReader(Protocol):
    @abstractmethod
    async def standing(self, user_id: UUID, api_key: str | None, now: datetime) -> Standing | None:
        """The principal as it stands now, in one read: None when the user (or the key, when given) is missing
        or the user inactive. The role is the stored one, not the one a token claims."""


class SecretCipher(Protocol):
    """Secrets the server must use again (API key secrets, to recompute HMACs) are stored encrypted, each bound
    to its row by associated data, so a ciphertext copied onto another row does not decrypt."""

    @abstractmethod
    def encrypt(self, plaintext: str, associated_data: str) -> bytes: ...

    @abstractmethod
    def decrypt(self, ciphertext: bytes, associated_data: str) -> str | None:
        """None when the ciphertext was tampered with, belongs to another row, or no configured key opens it."""

    @abstractmethod
    def needs_reencryption(self, ciphertext: bytes) -> bool:
        """True when it was made with a key other than the current (first) one."""
