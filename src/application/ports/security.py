from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.user import Principal, Role


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


class PrincipalReader(Protocol):
    @abstractmethod
    async def principal(self, user_id: UUID, api_key: str | None) -> Principal | None:
        """The principal as it stands now, in one read: None when the user is missing or inactive (or the key,
        when given, no longer authenticates). The role is the stored one, not the one a token claims."""


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
