from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.ports.persistence import Page, PageRequest
from domain.api_key import ApiKey, KeyStatus
from domain.credits import Credits
from domain.typeid import TypeProfile
from domain.user import Role


class TypeProfiles(Protocol):
    @abstractmethod
    async def get(self, typeid: str) -> TypeProfile | None: ...

    @abstractmethod
    async def page(self, page: PageRequest) -> Page[TypeProfile]:
        """In TypeID order."""

    @abstractmethod
    async def add(self, profile: TypeProfile) -> None:
        """MUST raise TypeIdTaken when the id is taken."""

    @abstractmethod
    async def replace(self, profile: TypeProfile) -> bool: ...

    @abstractmethod
    async def delete(self, typeid: str) -> bool:
        """MUST raise TypeIdInUse while API keys refer to it."""


@dataclass(frozen=True, slots=True)
class KeyChanges:
    expires_at: datetime | None = None
    status: KeyStatus | None = None
    typeid: str | None = None
    credit_limit: Credits | None = None
    clear_credit_limit: bool = False


@dataclass(frozen=True, slots=True)
class KeyCredentials:
    """What HMAC login needs: the key, its owner's username, and its encrypted secret."""

    key: ApiKey
    username: str
    role: Role
    secret_ciphertext: bytes
    sessions_valid_after: datetime | None = None
    """The later of the user's and the key's."""


class ApiKeys(Protocol):
    @abstractmethod
    async def add(self, key: ApiKey, secret_ciphertext: bytes) -> None: ...

    @abstractmethod
    async def get(self, api_key: str) -> ApiKey | None: ...

    @abstractmethod
    async def credentials(self, api_key: str) -> KeyCredentials | None: ...

    @abstractmethod
    async def of(self, user_id: UUID | None, page: PageRequest) -> Page[ApiKey]:
        """Every key (None) or one user's, newest first."""

    @abstractmethod
    async def change(self, api_key: str, changes: KeyChanges) -> bool:
        """Apply the changes to a key that is not revoked; False when the key is missing or revoked."""

    @abstractmethod
    async def end_sessions(self, api_key: str, valid_after: datetime) -> None:
        """Tokens of the key issued before `valid_after` stop working for good."""

    @abstractmethod
    async def ciphertexts(self) -> list[tuple[str, bytes]]:
        """Every key's id and encrypted secret (for re-encryption after a master-key rotation)."""

    @abstractmethod
    async def set_ciphertext(self, api_key: str, secret_ciphertext: bytes) -> None: ...

    @abstractmethod
    async def spent(self, api_key: str) -> Credits:
        """What the key's generations cost so far (running ones count their pre-charge)."""


class NonceStore(Protocol):
    @abstractmethod
    async def claim(self, api_key: str, nonce: str, expires_at: datetime) -> bool:
        """True the first time a (key, nonce) pair is seen; atomic across instances."""


@dataclass(frozen=True, slots=True)
class TextReference:
    id: UUID
    user_id: UUID
    api_key: str
    name: str | None
    content: str
    created_at: datetime


class References(Protocol):
    @abstractmethod
    async def add(self, reference: TextReference, max_stored_bytes: int) -> bool:
        """Store it unless the owner's references (UTF-8 bytes of their contents, the new one included) would
        exceed `max_stored_bytes` (0: no limit); False then, nothing stored. Concurrent adds for one owner are
        serialized, so together they cannot pass the limit; deleted references no longer count."""

    @abstractmethod
    async def get(self, reference_id: UUID) -> TextReference | None: ...
