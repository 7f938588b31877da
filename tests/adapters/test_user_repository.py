"""Users and wallets on PostgreSQL: case-insensitive unique usernames that leave the caller's transaction usable,
keyset pages oldest first behind opaque cursors, and admin promotion."""

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.postgres.cursors import CursorValue, decode_cursor, encode_cursor
from adapters.postgres.tables import users, wallets
from adapters.postgres.user_repository import PgUserRepository
from application.ports.persistence import NewUser, PageRequest
from domain.credits import Credits
from domain.errors import InvalidInput
from domain.user import Role, UsernameTaken

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _new_user(username: str, *, created_at: datetime = T0, role: Role = Role.CLIENT) -> NewUser:
    return NewUser(
        id=uuid.uuid4(),
        username=username,
        email=f"{username}@example.com",
        password_hash=f"hash-of-{username}",
        role=role,
        created_at=created_at,
    )


def _session(engine: AsyncEngine) -> AsyncSession:
    return async_sessionmaker(engine, expire_on_commit=False)()


async def _add_all(engine: AsyncEngine, *new_users: NewUser) -> None:
    async with _session(engine) as session:
        repository = PgUserRepository(session)
        for user in new_users:
            await repository.add(user)
        await session.commit()


def _raw_cursor(json_text: str) -> str:
    return base64.urlsafe_b64encode(json_text.encode()).decode()


async def test_a_new_user_has_an_empty_wallet(clean_db: AsyncEngine) -> None:
    new = _new_user("Alice")
    await _add_all(clean_db, new)
    async with _session(clean_db) as session:
        account = await PgUserRepository(session).account(new.id)
    assert account is not None
    assert account.balance == Credits(0)
    assert (account.user.id, account.user.username, account.user.email) == (new.id, "Alice", "Alice@example.com")
    assert (account.user.role, account.user.is_active, account.user.created_at) == (Role.CLIENT, True, T0)


async def test_a_username_taken_in_another_case_leaves_the_transaction_usable(clean_db: AsyncEngine) -> None:
    alice, bob = _new_user("Alice"), _new_user("bob")
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        await repository.add(alice)
        with pytest.raises(UsernameTaken):
            await repository.add(_new_user("aLICE"))
        await repository.add(bob)
        await session.commit()
    async with _session(clean_db) as session:
        names = (await session.scalars(select(users.c.username).order_by(users.c.username))).all()
        wallet_count = await session.scalar(select(func.count()).select_from(wallets))
    assert names == ["Alice", "bob"]
    assert wallet_count == 2


async def test_other_integrity_errors_are_not_reported_as_a_taken_username(clean_db: AsyncEngine) -> None:
    first = _new_user("first")
    await _add_all(clean_db, first)
    same_id = NewUser(first.id, "second", None, "h", Role.CLIENT, T0)
    async with _session(clean_db) as session:
        with pytest.raises(IntegrityError):
            await PgUserRepository(session).add(same_id)


usernames = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1, max_size=40
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=usernames, uppercase=st.lists(st.booleans(), min_size=64, max_size=64))
async def test_any_case_variant_of_a_taken_username_is_taken(
    clean_db: AsyncEngine, name: str, uppercase: list[bool]
) -> None:
    original = f"u{uuid.uuid4().hex[:8]}{name}"
    variant = "".join(c.upper() if up else c.lower() for c, up in zip(original, uppercase, strict=False))
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        await repository.add(_new_user(original))
        with pytest.raises(UsernameTaken):
            await repository.add(_new_user(variant))
        found = await repository.credentials(variant.swapcase())
    assert found is not None
    assert found.user.username == original


async def test_credentials_are_found_by_username_in_any_case(clean_db: AsyncEngine) -> None:
    await _add_all(clean_db, _new_user("Carol"))
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        found = await repository.credentials("cAROL")
        missing = await repository.credentials("dave")
    assert found is not None
    assert (found.user.username, found.password_hash) == ("Carol", "hash-of-Carol")
    assert missing is None


async def test_account_of_an_unknown_user_is_none(clean_db: AsyncEngine) -> None:
    async with _session(clean_db) as session:
        assert await PgUserRepository(session).account(uuid.uuid4()) is None


async def test_accounts_are_paged_oldest_first_with_ties_broken_by_id(clean_db: AsyncEngine) -> None:
    minutes = [3, 0, 4, 1, 1, 1, 2]
    new_users = [_new_user(f"user{i}", created_at=T0 + timedelta(minutes=m)) for i, m in enumerate(minutes)]
    await _add_all(clean_db, *new_users)
    pages = []
    cursor = None
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        while True:
            page = await repository.accounts(PageRequest(limit=2, cursor=cursor))
            pages.append([account.user.id for account in page.items])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    expected = [u.id for u in sorted(new_users, key=lambda u: (u.created_at, u.id))]
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [user_id for page in pages for user_id in page] == expected


async def test_a_page_that_ends_the_list_has_no_next_cursor(clean_db: AsyncEngine) -> None:
    await _add_all(clean_db, _new_user("one"), _new_user("two"))
    async with _session(clean_db) as session:
        page = await PgUserRepository(session).accounts(PageRequest(limit=2))
    assert len(page.items) == 2
    assert page.next_cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "é",
        _raw_cursor("{}"),
        _raw_cursor("[1]"),
        _raw_cursor(f'["2026-01-01T00:00:00Z", "{uuid.uuid4()}", 1]'),
        _raw_cursor(f'["2026-01-01T00:00:00", "{uuid.uuid4()}"]'),
        _raw_cursor('["2026-01-01T00:00:00Z", "not-a-uuid"]'),
    ],
)
async def test_a_forged_cursor_is_invalid_input(clean_db: AsyncEngine, cursor: str) -> None:
    async with _session(clean_db) as session:
        with pytest.raises(InvalidInput) as raised:
            await PgUserRepository(session).accounts(PageRequest(cursor=cursor))
    assert raised.value.field == "cursor"


cursor_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")),
    st.uuids(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-9, minutes=-30))])),
)


@given(values=st.lists(cursor_values, max_size=4))
def test_a_cursor_decodes_to_the_values_it_encodes(values: list[CursorValue]) -> None:
    assert decode_cursor(encode_cursor(*values), *(type(v) for v in values)) == tuple(values)


@given(cursor=st.text() | st.builds(_raw_cursor, st.text()))
def test_decoding_any_text_gives_bindable_values_or_invalid_input(cursor: str) -> None:
    try:
        (value,) = decode_cursor(cursor, int)
    except InvalidInput:
        return
    assert isinstance(value, int)
    assert -(2**63) <= value < 2**63


@pytest.mark.parametrize(("json_text", "kind"), [("[9223372036854775808]", int), ('["a\\u0000b"]', str)])
def test_values_postgres_cannot_bind_are_invalid_cursors(json_text: str, kind: type[CursorValue]) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(_raw_cursor(json_text), kind)


async def test_update_changes_only_what_is_given(clean_db: AsyncEngine) -> None:
    new = _new_user("erin")
    await _add_all(clean_db, new)
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        assert await repository.update(new.id, role=Role.ADMIN, is_active=None)
        assert await repository.update(new.id, role=None, is_active=False)
        assert await repository.update(new.id, role=None, is_active=None)
        account = await repository.account(new.id)
    assert account is not None
    assert (account.user.role, account.user.is_active) == (Role.ADMIN, False)


@pytest.mark.parametrize(("role", "is_active"), [(Role.ADMIN, True), (None, None)])
async def test_updating_an_unknown_user_is_false(
    clean_db: AsyncEngine, role: Role | None, is_active: bool | None
) -> None:
    async with _session(clean_db) as session:
        assert not await PgUserRepository(session).update(uuid.uuid4(), role=role, is_active=is_active)


async def test_set_password_hash_replaces_the_hash(clean_db: AsyncEngine) -> None:
    new = _new_user("frank")
    await _add_all(clean_db, new)
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        await repository.set_password_hash(new.id, "$argon2id$new")
        found = await repository.credentials("frank")
    assert found is not None
    assert found.password_hash == "$argon2id$new"


async def test_an_existing_user_is_promoted_to_an_active_admin(clean_db: AsyncEngine) -> None:
    existing = _new_user("Grace")
    await _add_all(clean_db, existing)
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        await repository.update(existing.id, role=None, is_active=False)
        admin = await repository.promote_or_create_admin(_new_user("GRACE", role=Role.ADMIN))
        await session.commit()
        found = await repository.credentials("grace")
        wallet_count = await session.scalar(select(func.count()).select_from(wallets))
    assert (admin.id, admin.username, admin.role, admin.is_active) == (existing.id, "Grace", Role.ADMIN, True)
    assert found is not None
    assert found.password_hash == "hash-of-GRACE"
    assert wallet_count == 1


async def test_a_missing_admin_is_created_with_an_empty_wallet(clean_db: AsyncEngine) -> None:
    new = _new_user("root", role=Role.ADMIN)
    async with _session(clean_db) as session:
        repository = PgUserRepository(session)
        admin = await repository.promote_or_create_admin(new)
        await session.commit()
        account = await repository.account(new.id)
    assert (admin.id, admin.role, admin.is_active) == (new.id, Role.ADMIN, True)
    assert account is not None
    assert account.balance == Credits(0)
