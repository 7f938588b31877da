"""The request-transaction ports' contracts (users, throttles, refresh tokens, TypeIDs, keys, nonces, references),
one suite run against the in-memory fakes and against PostgreSQL."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from adapters.postgres.comparison import PgApiKeys, PgNonceStore, PgReferences, PgTypeProfiles
from adapters.postgres.refresh_tokens import PgRefreshTokenStore
from adapters.postgres.statements import StatementPool
from adapters.postgres.throttle import PgThrottleCounter
from adapters.postgres.unit_of_work import SqlaUnitOfWork
from adapters.postgres.user_repository import PgUserRepository
from application.ports.comparison import (
    ApiKeys,
    KeyChanges,
    NonceStore,
    References,
    TextReference,
    TypeProfiles,
)
from application.ports.persistence import (
    NewUser,
    PageRequest,
    RefreshGrant,
    RefreshTokenStore,
    RotationOutcome,
    ThrottleCounter,
    UnitOfWork,
    UserRepository,
)
from domain.api_key import ApiKey, KeyStatus
from domain.credits import Credits
from domain.typeid import TypeIdInUse, TypeIdTaken, TypeProfile
from domain.user import Role, User, UsernameTaken
from tests.support.fakes import Fakes

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Ports:
    users: UserRepository
    throttle: ThrottleCounter
    refresh_tokens: RefreshTokenStore
    profiles: TypeProfiles
    keys: ApiKeys
    nonces: NonceStore
    references: References
    uow: UnitOfWork

    async def user(self, name: str, role: Role = Role.CLIENT, created_at: datetime = NOW) -> User:
        return await self.users.add(NewUser(uuid.uuid4(), name, None, "hash", role, created_at))

    async def key(self, user: User, typeid: str = "t", created_at: datetime = NOW) -> ApiKey:
        if await self.profiles.get(typeid) is None:
            await self.profiles.add(
                TypeProfile(typeid, None, 10, "s", "{reference} {text}", "dr14", "simulator", "", NOW, NOW)
            )
        key = ApiKey(
            f"ak_{uuid.uuid4().hex}", user.id, typeid, None, KeyStatus.ACTIVE, NOW + timedelta(days=1), None, created_at
        )
        await self.keys.add(key, b"ciphertext")
        return key


@pytest.fixture
async def ports(backend: tuple[AsyncEngine, StatementPool] | None) -> AsyncIterator[Ports]:
    if backend is None:
        f = Fakes()
        yield Ports(f.users, f.throttle, f.refresh_tokens, f.profiles, f.keys, f.nonces, f.references, f.uow)
        return
    engine, _ = backend
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        yield Ports(
            PgUserRepository(s),
            PgThrottleCounter(s),
            PgRefreshTokenStore(s),
            PgTypeProfiles(s),
            PgApiKeys(s),
            PgNonceStore(s),
            PgReferences(s),
            SqlaUnitOfWork(s),
        )


async def test_a_username_is_unique_in_any_case_and_a_refusal_leaves_the_transaction_usable(ports: Ports) -> None:
    ada = await ports.user("Ada")
    with pytest.raises(UsernameTaken):
        await ports.user("ADA")
    await ports.user("bob")
    await ports.uow.commit()
    stored = await ports.users.credentials("aDa")
    assert stored is not None
    assert (stored.user, stored.password_hash) == (ada, "hash")
    account = await ports.users.account(ada.id)
    assert account is not None
    assert account.balance == Credits.zero()


async def test_accounts_page_oldest_first(ports: Ports) -> None:
    for n in range(3):
        await ports.user(f"u{n}", created_at=NOW + timedelta(seconds=n))
    first = await ports.users.accounts(PageRequest(limit=2))
    rest = await ports.users.accounts(PageRequest(limit=2, cursor=first.next_cursor))
    assert [a.user.username for a in [*first.items, *rest.items]] == ["u0", "u1", "u2"]
    assert rest.next_cursor is None


async def test_updates_change_what_is_given_and_only_active_admins_are_locked(ports: Ports) -> None:
    root, ada, gone = (
        await ports.user("root", Role.ADMIN),
        await ports.user("ada"),
        await ports.user("gone", Role.ADMIN),
    )
    assert await ports.users.update(gone.id, role=None, is_active=False)
    assert await ports.users.update(ada.id, role=None, is_active=None)
    assert not await ports.users.update(uuid.uuid4(), role=Role.ADMIN, is_active=None)
    assert await ports.users.lock_active_admins() == [root.id]


async def test_create_admin_promotes_and_reactivates_the_user_of_that_name(ports: Ports) -> None:
    ada = await ports.user("ada")
    await ports.users.update(ada.id, role=None, is_active=False)
    promoted = await ports.users.promote_or_create_admin(NewUser(uuid.uuid4(), "ADA", None, "new", Role.ADMIN, NOW))
    assert (promoted.id, promoted.role, promoted.is_active) == (ada.id, Role.ADMIN, True)
    stored = await ports.users.credentials("ada")
    assert stored is not None
    assert stored.password_hash == "new"


async def test_a_throttle_counts_every_subject_or_none_and_gives_back(ports: Ports) -> None:
    window = NOW.replace(second=0)
    take = ports.throttle.take
    assert await take({"a": 2, "b": 1}, window)
    assert not await take({"a": 2, "b": 1}, window)  # b is at its limit: a is not counted either
    assert await take({"a": 2}, window)
    assert not await take({"a": 2}, window)
    await ports.throttle.release(["a"], window)
    assert await take({"a": 2}, window)
    assert await take({"a": 2}, window + timedelta(minutes=15))


async def test_a_refresh_token_rotates_once_then_is_reuse_even_after_its_family_is_revoked(ports: Ports) -> None:
    ada = await ports.user("ada")
    grant = RefreshGrant(ada.id, uuid.uuid4(), None)
    token = await ports.refresh_tokens.issue(grant, now=NOW, expires_at=NOW + timedelta(days=1))
    sibling = await ports.refresh_tokens.issue(grant, now=NOW, expires_at=NOW + timedelta(days=1))
    rotation = await ports.refresh_tokens.use(token, NOW)
    assert (rotation.outcome, rotation.grant) == (RotationOutcome.ROTATED, grant)
    assert (await ports.refresh_tokens.use(token, NOW)).outcome is RotationOutcome.REUSED
    assert await ports.refresh_tokens.family_of(token) == grant.family_id
    await ports.refresh_tokens.revoke_family(grant.family_id, NOW)
    assert (await ports.refresh_tokens.use(token, NOW)).outcome is RotationOutcome.REUSED
    assert (await ports.refresh_tokens.use(sibling, NOW)).outcome is RotationOutcome.INVALID
    assert (await ports.refresh_tokens.use("unknown", NOW)).outcome is RotationOutcome.INVALID
    assert await ports.refresh_tokens.family_of("unknown") is None


async def test_an_expired_refresh_token_and_those_of_a_revoked_user_or_key_are_invalid(ports: Ports) -> None:
    ada = await ports.user("ada")
    key = await ports.key(ada)
    issue = ports.refresh_tokens.issue
    expired = await issue(RefreshGrant(ada.id, uuid.uuid4(), None), now=NOW, expires_at=NOW + timedelta(seconds=1))
    assert (await ports.refresh_tokens.use(expired, NOW + timedelta(seconds=1))).outcome is RotationOutcome.INVALID
    of_user = await issue(RefreshGrant(ada.id, uuid.uuid4(), None), now=NOW, expires_at=NOW + timedelta(days=1))
    of_key = await issue(RefreshGrant(ada.id, uuid.uuid4(), key.api_key), now=NOW, expires_at=NOW + timedelta(days=1))
    await ports.refresh_tokens.revoke_key(key.api_key, NOW)
    assert (await ports.refresh_tokens.use(of_key, NOW)).outcome is RotationOutcome.INVALID
    assert (await ports.refresh_tokens.use(of_user, NOW)).outcome is RotationOutcome.ROTATED
    again = await issue(RefreshGrant(ada.id, uuid.uuid4(), None), now=NOW, expires_at=NOW + timedelta(days=1))
    await ports.refresh_tokens.revoke_user(ada.id, NOW)
    assert (await ports.refresh_tokens.use(again, NOW)).outcome is RotationOutcome.INVALID


async def test_a_typeid_is_unique_pages_in_order_and_cannot_go_while_keys_use_it(ports: Ports) -> None:
    ada = await ports.user("ada")
    await ports.key(ada, typeid="used")
    profile = TypeProfile("b-free", None, 10, "s", "{reference} {text}", "dr14", "simulator", "", NOW, NOW)
    await ports.profiles.add(profile)
    with pytest.raises(TypeIdTaken):
        await ports.profiles.add(profile)
    first = await ports.profiles.page(PageRequest(limit=1))
    rest = await ports.profiles.page(PageRequest(limit=1, cursor=first.next_cursor))
    assert [p.typeid for p in [*first.items, *rest.items]] == ["b-free", "used"]
    with pytest.raises(TypeIdInUse):
        await ports.profiles.delete("used")
    assert await ports.profiles.delete("b-free")
    assert not await ports.profiles.delete("b-free")
    assert not await ports.profiles.replace(profile)


async def test_a_revoked_key_changes_no_more_and_an_inactive_owner_has_no_credentials(ports: Ports) -> None:
    ada = await ports.user("ada")
    key = await ports.key(ada)
    assert await ports.keys.change(key.api_key, KeyChanges(credit_limit=Credits(5)))
    assert await ports.keys.change(key.api_key, KeyChanges())
    changed = await ports.keys.get(key.api_key)
    assert changed is not None
    assert changed.credit_limit == Credits(5)
    assert await ports.keys.change(key.api_key, KeyChanges(clear_credit_limit=True))
    assert await ports.keys.change(key.api_key, KeyChanges(status=KeyStatus.REVOKED))
    assert not await ports.keys.change(key.api_key, KeyChanges(status=KeyStatus.ACTIVE))
    assert not await ports.keys.change("ak_unknown", KeyChanges())
    credentials = await ports.keys.credentials(key.api_key)
    assert credentials is not None
    assert (credentials.username, credentials.key.credit_limit) == ("ada", None)
    await ports.users.update(ada.id, role=None, is_active=False)
    assert await ports.keys.credentials(key.api_key) is None


async def test_keys_are_listed_newest_first_per_owner_or_all(ports: Ports) -> None:
    ada, bob = await ports.user("ada"), await ports.user("bob")
    old = await ports.key(ada, created_at=NOW)
    new = await ports.key(ada, created_at=NOW + timedelta(seconds=1))
    await ports.key(bob, created_at=NOW + timedelta(seconds=2))
    assert [k.api_key for k in (await ports.keys.of(ada.id, PageRequest())).items] == [new.api_key, old.api_key]
    assert len((await ports.keys.of(None, PageRequest())).items) == 3


async def test_a_nonce_is_claimed_once_per_key(ports: Ports) -> None:
    ada = await ports.user("ada")
    key, other = await ports.key(ada), await ports.key(ada)
    expires = NOW + timedelta(minutes=11)
    assert await ports.nonces.claim(key.api_key, "n", expires)
    assert not await ports.nonces.claim(key.api_key, "n", expires)
    assert await ports.nonces.claim(other.api_key, "n", expires)


async def test_references_stay_within_the_owners_bytes(ports: Ports) -> None:
    ada = await ports.user("ada")
    key = await ports.key(ada)

    def reference(content: str) -> TextReference:
        return TextReference(uuid.uuid4(), ada.id, key.api_key, None, content, NOW)

    first = reference("é" * 4)
    assert await ports.references.add(first, 10)
    assert not await ports.references.add(reference("abc"), 10)
    assert await ports.references.add(reference("ab"), 10)
    assert await ports.references.add(reference("no limit"), 0)
    assert await ports.references.get(first.id) == first
    assert await ports.references.get(uuid.uuid4()) is None
