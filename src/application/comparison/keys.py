import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import msgspec

from application import examples
from application.accounts.sessions import session_cutoff
from application.comparison.subscription import visible_key
from application.comparison.typeids import TypeIdText
from application.instants import AwareDatetime, in_utc
from application.patterns import POSITIVE_CREDITS, STORABLE_TEXT
from application.ports.clock import Clock
from application.ports.comparison import ApiKeys, KeyChanges, TypeProfiles
from application.ports.persistence import PageRequest, RefreshTokenStore, UnitOfWork, UserRepository
from application.ports.security import IdentityProvider, SecretCipher
from application.views import CreditsText
from domain.api_key import ApiKey, KeyIsRevoked, KeyNotFound, KeyStatus, SubscriptionStatus
from domain.credits import Credits
from domain.errors import InvalidInput

DEFAULT_LIFETIME = timedelta(days=30)
KEY_ID_BYTES = 18
SECRET_BYTES = 32


CreditLimitText = Annotated[
    str, msgspec.Meta(pattern=POSITIVE_CREDITS, description="Credits the key may spend in all, above zero.")
]


class NewKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user_id: UUID
    typeid: TypeIdText
    name: Annotated[str, msgspec.Meta(max_length=200, pattern=STORABLE_TEXT)] | None = None
    expires_at: AwareDatetime | None = None
    credit_limit: CreditLimitText | None = None

    example: ClassVar[dict[str, Any]] = {
        "user_id": examples.USER_ID,
        "typeid": examples.TYPEID,
        "name": "essay-grading service",
        "expires_at": examples.EXPIRES_AT,
        "credit_limit": "50",
    }


class KeyPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expires_at: AwareDatetime | None = None
    status: Literal["active", "suspended"] | None = None
    typeid: TypeIdText | None = None
    credit_limit: CreditLimitText | msgspec.UnsetType | None = msgspec.UNSET

    example: ClassVar[dict[str, Any]] = {
        "expires_at": "2031-01-01T00:00:00Z",
        "status": "active",
        "credit_limit": "100",
    }


class KeyView(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str
    user_id: UUID
    typeid: str
    name: str | None
    subscription: SubscriptionStatus
    expires_at: datetime
    credit_limit: CreditsText | None
    created_at: datetime

    example: ClassVar[dict[str, Any]] = {
        "api_key": examples.API_KEY,
        "user_id": examples.USER_ID,
        "typeid": examples.TYPEID,
        "name": "essay-grading service",
        "subscription": "active",
        "expires_at": examples.EXPIRES_AT,
        "credit_limit": "50",
        "created_at": examples.CREATED_AT,
    }

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> "KeyView":
        return cls(
            api_key=key.api_key,
            user_id=key.user_id,
            typeid=key.typeid,
            name=key.name,
            subscription=key.subscription(now),
            expires_at=key.expires_at,
            credit_limit=None if key.credit_limit is None else str(key.credit_limit),
            created_at=key.created_at,
        )


class CreatedKey(KeyView, frozen=True, kw_only=True):
    secret_key: str

    example: ClassVar[dict[str, Any]] = KeyView.example | {"secret_key": examples.SECRET_KEY}


class KeyList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[KeyView]
    next_cursor: str | None = None

    example: ClassVar[dict[str, Any]] = {"items": [KeyView.example], "next_cursor": None}


def _limit(text: str | None) -> Credits | None:
    if text is None:
        return None
    limit = Credits.parse(text, field="credit_limit")
    if not limit.is_positive():
        raise InvalidInput("a credit limit is positive", field="credit_limit")
    return limit


class CreateKey:
    """API keys tie a user to a TypeID. The secret is returned once, at creation, and stored encrypted (bound to
    its key); deleting a key revokes it and every token issued from it, at once, on every instance."""

    def __init__(
        self,
        keys: ApiKeys,
        profiles: TypeProfiles,
        users: UserRepository,
        cipher: SecretCipher,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._keys = keys
        self._profiles = profiles
        self._users = users
        self._cipher = cipher
        self._uow = uow
        self._clock = clock

    async def __call__(self, new: NewKey) -> CreatedKey:
        now = self._clock.now()
        expires_at = now + DEFAULT_LIFETIME if new.expires_at is None else in_utc(new.expires_at, "expires_at")
        if await self._users.account(new.user_id) is None:
            raise InvalidInput("no such user", field="user_id")
        await _require_typeid(self._profiles, new.typeid)
        key = ApiKey(
            api_key=f"ak_{secrets.token_urlsafe(KEY_ID_BYTES)}",
            user_id=new.user_id,
            typeid=new.typeid,
            name=new.name,
            status=KeyStatus.ACTIVE,
            expires_at=expires_at,
            credit_limit=_limit(new.credit_limit),
            created_at=now,
        )
        secret = f"sk_{secrets.token_urlsafe(SECRET_BYTES)}"
        await self._keys.add(key, self._cipher.encrypt(secret, key.api_key))
        await self._uow.commit()
        return CreatedKey(**msgspec.structs.asdict(KeyView.of(key, now)), secret_key=secret)


class ListKeys:
    """Admins see every key (or one user's); other callers see their own. Newest first."""

    def __init__(self, keys: ApiKeys, identity: IdentityProvider, clock: Clock) -> None:
        self._keys = keys
        self._identity = identity
        self._clock = clock

    async def __call__(self, user_id: UUID | None, page: PageRequest) -> KeyList:
        principal = await self._identity.current()
        owner = user_id if principal.is_admin else principal.user_id
        now = self._clock.now()
        found = await self._keys.of(owner, page)
        return KeyList(items=[KeyView.of(key, now) for key in found.items], next_cursor=found.next_cursor)


class GetKey:
    """One key: its owner and admins see it; anyone else gets 404, as if it did not exist."""

    def __init__(self, keys: ApiKeys, identity: IdentityProvider, clock: Clock) -> None:
        self._keys = keys
        self._identity = identity
        self._clock = clock

    async def __call__(self, api_key: str) -> KeyView:
        return KeyView.of(await visible_key(self._keys, await self._identity.current(), api_key), self._clock.now())


class UpdateKey:
    """Change a key's expiry, status (`active`/`suspended`), TypeID or credit limit (null removes it). A revoked
    key is final (409 `key_revoked`). A change that stops or restarts the subscription (a suspension, a
    reactivation, an `expires_at` moved across now) ends the key's sessions: its tokens issued before stay dead,
    so the key logs in afresh."""

    def __init__(
        self,
        keys: ApiKeys,
        profiles: TypeProfiles,
        refresh_tokens: RefreshTokenStore,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._keys = keys
        self._profiles = profiles
        self._refresh_tokens = refresh_tokens
        self._uow = uow
        self._clock = clock

    async def __call__(self, api_key: str, patch: KeyPatch) -> KeyView:
        before = await _existing(self._keys, api_key)
        if patch.typeid is not None:
            await _require_typeid(self._profiles, patch.typeid)
        changes = KeyChanges(
            expires_at=None if patch.expires_at is None else in_utc(patch.expires_at, "expires_at"),
            status=None if patch.status is None else KeyStatus(patch.status),
            typeid=patch.typeid,
            credit_limit=_limit(patch.credit_limit) if isinstance(patch.credit_limit, str) else None,
            clear_credit_limit=patch.credit_limit is None,
        )
        if not await self._keys.change(api_key, changes):
            raise KeyIsRevoked  # it exists (keys are never deleted), so it is revoked, maybe since `before`
        after = await _existing(self._keys, api_key)
        now = self._clock.now()
        if (before.subscription(now) is SubscriptionStatus.ACTIVE) != (
            after.subscription(now) is SubscriptionStatus.ACTIVE
        ):
            await _end_sessions(self._keys, self._refresh_tokens, api_key, now)
        await self._uow.commit()
        return KeyView.of(after, now)


class RevokeKey:
    """Revoke a key: it and every token issued from it stop working at once, for good (again: 204)."""

    def __init__(self, keys: ApiKeys, refresh_tokens: RefreshTokenStore, uow: UnitOfWork, clock: Clock) -> None:
        self._keys = keys
        self._refresh_tokens = refresh_tokens
        self._uow = uow
        self._clock = clock

    async def __call__(self, api_key: str) -> None:
        if await self._keys.change(api_key, KeyChanges(status=KeyStatus.REVOKED)):
            await _end_sessions(self._keys, self._refresh_tokens, api_key, self._clock.now())
            await self._uow.commit()
        else:
            await _existing(self._keys, api_key)


async def _end_sessions(keys: ApiKeys, refresh_tokens: RefreshTokenStore, api_key: str, now: datetime) -> None:
    await keys.end_sessions(api_key, session_cutoff(now))
    await refresh_tokens.revoke_key(api_key, now)


async def _existing(keys: ApiKeys, api_key: str) -> ApiKey:
    key = await keys.get(api_key)
    if key is None:
        raise KeyNotFound
    return key


async def _require_typeid(profiles: TypeProfiles, typeid: str) -> None:
    if await profiles.get(typeid) is None:
        raise InvalidInput("no such TypeID", field="typeid")
