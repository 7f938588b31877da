"""TypeIDs, API keys, login nonces and reference texts, in memory."""

import dataclasses
from datetime import datetime
from uuid import UUID

from application.ports.comparison import (
    ApiKeys,
    KeyChanges,
    KeyCredentials,
    NonceStore,
    References,
    TextReference,
    TypeProfiles,
)
from application.ports.persistence import Page, PageRequest
from domain.api_key import ApiKey, KeyStatus
from domain.credits import Credits
from domain.typeid import TypeIdInUse, TypeIdTaken, TypeProfile
from tests.support.fakes.state import FakeDatabase, KeyRow, paged


class FakeTypeProfiles(TypeProfiles):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def get(self, typeid: str) -> TypeProfile | None:
        return self._db.tables.profiles.get(typeid)

    async def page(self, page: PageRequest) -> Page[TypeProfile]:
        return paged(self._db.tables.profiles.values(), page, lambda p: p.typeid)

    async def add(self, profile: TypeProfile) -> None:
        if profile.typeid in self._db.tables.profiles:
            raise TypeIdTaken
        self._db.tables.profiles[profile.typeid] = profile

    async def replace(self, profile: TypeProfile) -> bool:
        profiles = self._db.tables.profiles
        if profile.typeid not in profiles:
            return False
        profiles[profile.typeid] = dataclasses.replace(profile, created_at=profiles[profile.typeid].created_at)
        return True

    async def delete(self, typeid: str) -> bool:
        tables = self._db.tables
        if any(row.key.typeid == typeid for row in tables.keys.values()):
            raise TypeIdInUse
        return tables.profiles.pop(typeid, None) is not None


class FakeApiKeys(ApiKeys):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def add(self, key: ApiKey, secret_ciphertext: bytes) -> None:
        self._db.tables.keys[key.api_key] = KeyRow(key, secret_ciphertext)

    async def get(self, api_key: str) -> ApiKey | None:
        row = self._db.tables.keys.get(api_key)
        return None if row is None else row.key

    async def credentials(self, api_key: str) -> KeyCredentials | None:
        tables = self._db.tables
        row = tables.keys.get(api_key)
        owner = None if row is None else tables.users[row.key.user_id]
        if row is None or owner is None or not owner.user.is_active:
            return None
        cutoffs = [c for c in (owner.sessions_valid_after, row.sessions_valid_after) if c is not None]
        return KeyCredentials(
            row.key, owner.user.username, owner.user.role, row.secret_ciphertext, max(cutoffs, default=None)
        )

    async def of(self, user_id: UUID | None, page: PageRequest) -> Page[ApiKey]:
        keys = [row.key for row in self._db.tables.keys.values() if user_id is None or row.key.user_id == user_id]
        return paged(keys, page, lambda k: (k.created_at, k.api_key), newest_first=True)

    async def change(self, api_key: str, changes: KeyChanges) -> bool:
        row = self._db.tables.keys.get(api_key)
        if row is None or row.key.status is KeyStatus.REVOKED:
            return False
        key = row.key
        limit_changed = changes.credit_limit is not None or changes.clear_credit_limit
        row.key = dataclasses.replace(
            key,
            expires_at=key.expires_at if changes.expires_at is None else changes.expires_at,
            status=key.status if changes.status is None else changes.status,
            typeid=key.typeid if changes.typeid is None else changes.typeid,
            credit_limit=changes.credit_limit if limit_changed else key.credit_limit,
        )
        return True

    async def end_sessions(self, api_key: str, valid_after: datetime) -> None:
        self._db.tables.keys[api_key].sessions_valid_after = valid_after

    async def ciphertexts(self) -> list[tuple[str, bytes]]:
        return [(api_key, row.secret_ciphertext) for api_key, row in self._db.tables.keys.items()]

    async def set_ciphertext(self, api_key: str, secret_ciphertext: bytes) -> None:
        self._db.tables.keys[api_key].secret_ciphertext = secret_ciphertext

    async def spent(self, api_key: str) -> Credits:
        generations = self._db.tables.generations.values()
        return sum((g.generation.cost for g in generations if g.generation.api_key == api_key), Credits.zero())


class FakeNonceStore(NonceStore):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def claim(self, api_key: str, nonce: str, expires_at: datetime) -> bool:
        nonces = self._db.tables.nonces
        if (api_key, nonce) in nonces:
            return False
        nonces[api_key, nonce] = expires_at
        return True


class FakeReferences(References):
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def add(self, reference: TextReference, max_stored_bytes: int) -> bool:
        references = self._db.tables.references
        stored = sum(len(r.content.encode()) for r in references.values() if r.user_id == reference.user_id)
        if max_stored_bytes and stored + len(reference.content.encode()) > max_stored_bytes:
            return False
        references[reference.id] = reference
        return True

    async def get(self, reference_id: UUID) -> TextReference | None:
        return self._db.tables.references.get(reference_id)
