"""TypeIDs, API keys, subscriptions, HMAC key login and secret re-encryption, on fakes."""

from datetime import timedelta
from uuid import UUID

import msgspec
import pytest

from application.comparison.key_login import KeyLogin, KeyLoginRequest
from application.comparison.keys import (
    DEFAULT_LIFETIME,
    CreateKey,
    GetKey,
    KeyPatch,
    ListKeys,
    NewKey,
    RevokeKey,
    UpdateKey,
)
from application.comparison.rotate_secrets import ReencryptSecrets
from application.comparison.subscription import GetSubscription
from application.comparison.typeids import (
    CreateTypeId,
    DeleteTypeId,
    GetTypeId,
    ListTypeIds,
    NewTypeId,
    ReplaceTypeId,
    TypeIdFields,
)
from application.ports.persistence import PageRequest
from domain.api_key import KeyIsRevoked, KeyNotFound, KeyRevoked, KeyStatus, SubscriptionInactive, SubscriptionStatus
from domain.errors import InvalidInput
from domain.hmac_signature import InvalidSignature, ReplayedNonce, SignedLogin, StaleTimestamp
from domain.typeid import TypeIdInUse, TypeIdNotFound, TypeIdTaken, UnknownModel
from domain.user import Principal, Role, User
from tests.support.fakes import KEY_SECRET, Fakes
from tests.support.fakes.security import FakeCipher

FIELDS = TypeIdFields(scale=10, system="Grade.", user="{reference} / {text} (0-{scale})", model="m1", llm="scripted")


def _create_typeid(f: Fakes) -> CreateTypeId:
    return CreateTypeId(f.profiles, f.catalog, f.uow, f.clock)


def _replace_typeid(f: Fakes) -> ReplaceTypeId:
    return ReplaceTypeId(f.profiles, f.catalog, f.uow, f.clock)


def _delete_typeid(f: Fakes) -> DeleteTypeId:
    return DeleteTypeId(f.profiles, f.uow)


def _create_key(f: Fakes) -> CreateKey:
    return CreateKey(f.keys, f.profiles, f.users, f.cipher, f.uow, f.clock)


def _list_keys(f: Fakes) -> ListKeys:
    return ListKeys(f.keys, f.identity, f.clock)


def _get_key(f: Fakes) -> GetKey:
    return GetKey(f.keys, f.identity, f.clock)


def _update_key(f: Fakes) -> UpdateKey:
    return UpdateKey(f.keys, f.profiles, f.refresh_tokens, f.uow, f.clock)


def _revoke_key(f: Fakes) -> RevokeKey:
    return RevokeKey(f.keys, f.refresh_tokens, f.uow, f.clock)


def _key_login(fakes: Fakes) -> KeyLogin:
    f = fakes
    return KeyLogin(f.keys, f.nonces, f.cipher, f.sessions(), f.uow, f.clock)


def _signed(
    fakes: Fakes,
    api_key: str,
    username: str = "ada",
    *,
    skew: int = 0,
    secret: str = KEY_SECRET,
    nonce: str = "nonce-0123456789ab",
) -> KeyLoginRequest:
    login = SignedLogin(api_key, username, int(fakes.clock.now().timestamp()) + skew, nonce)
    return KeyLoginRequest(
        api_key=login.api_key,
        username=login.username,
        timestamp=login.timestamp,
        nonce=login.nonce,
        signature=login.sign(secret),
    )


async def _world(fakes: Fakes) -> tuple[User, User]:
    """An admin acting, a client `ada`, the model `m1` and the TypeID `grader`."""
    admin = await fakes.user("root", role=Role.ADMIN)
    ada = await fakes.user("ada")
    await fakes.model("m1")
    await fakes.profile("grader")
    fakes.act_as(admin)
    return admin, ada


async def test_a_typeid_is_generated_when_none_is_given_and_a_given_one_must_be_unused() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    create = _create_typeid(fakes)
    generated = await create(NewTypeId(**msgspec.structs.asdict(FIELDS)))
    assert generated.typeid.startswith("tid_")
    assert len(generated.typeid) == 20
    named = NewTypeId(**msgspec.structs.asdict(FIELDS), typeid="essay")
    await create(named)
    with pytest.raises(TypeIdTaken):
        await create(named)
    listed = await ListTypeIds(fakes.profiles)(PageRequest(limit=1))
    assert [p.typeid for p in listed.items] == ["essay"]
    assert listed.next_cursor is not None


@pytest.mark.parametrize(("model", "llm"), [("nope", "scripted"), ("m1", "openai")])
async def test_a_typeid_names_a_model_of_the_catalog_with_its_provider(model: str, llm: str) -> None:
    fakes = Fakes()
    await fakes.model("m1")
    fields = msgspec.structs.replace(FIELDS, model=model, llm=llm)
    with pytest.raises(UnknownModel):
        await _create_typeid(fakes)(NewTypeId(**msgspec.structs.asdict(fields)))


async def test_a_template_without_its_placeholders_is_refused() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    fields = msgspec.structs.replace(FIELDS, user="only {text}")
    with pytest.raises(InvalidInput, match="reference"):
        await _create_typeid(fakes)(NewTypeId(**msgspec.structs.asdict(fields)))


async def test_replacing_keeps_the_creation_time_and_dates_the_change() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    created = await _create_typeid(fakes)(NewTypeId(**msgspec.structs.asdict(FIELDS), typeid="essay"))
    fakes.clock.advance(timedelta(hours=1))
    replaced = await _replace_typeid(fakes)("essay", msgspec.structs.replace(FIELDS, scale=100))
    await fakes.end_request()
    assert (replaced.scale, replaced.created_at, replaced.updated_at) == (100, created.created_at, fakes.clock.now())
    assert await GetTypeId(fakes.profiles)("essay") == replaced
    with pytest.raises(TypeIdNotFound):
        await _replace_typeid(fakes)("other", FIELDS)


async def test_a_typeid_in_use_by_a_key_cannot_be_deleted() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    await fakes.key(ada)
    with pytest.raises(TypeIdInUse):
        await _delete_typeid(fakes)("grader")
    await fakes.profile("unused")
    await _delete_typeid(fakes)("unused")
    await fakes.end_request()
    for call in (_delete_typeid(fakes)("unused"), GetTypeId(fakes.profiles)("unused")):
        with pytest.raises(TypeIdNotFound):
            await call


async def test_a_new_key_returns_its_secret_once_and_stores_it_encrypted_for_its_row() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    created = await _create_key(fakes)(NewKey(user_id=ada.id, typeid="grader", credit_limit="50"))
    await fakes.end_request()
    row = fakes.db.committed.keys[created.api_key]
    assert fakes.cipher.decrypt(row.secret_ciphertext, created.api_key) == created.secret_key
    assert fakes.cipher.decrypt(row.secret_ciphertext, "ak_another_row") is None
    assert (created.subscription, created.credit_limit) == (SubscriptionStatus.ACTIVE, "50")
    assert created.expires_at == fakes.clock.now() + DEFAULT_LIFETIME


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"user_id": UUID(int=999)}, "user_id"), ({"typeid": "nope"}, "typeid"), ({"credit_limit": "0"}, "credit_limit")],
)
async def test_a_key_needs_its_user_its_typeid_and_a_positive_limit(changes: dict[str, object], field: str) -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    with pytest.raises(InvalidInput) as refused:
        await _create_key(fakes)(NewKey(**({"user_id": ada.id, "typeid": "grader"} | changes)))
    assert refused.value.field == field


async def test_admins_list_every_key_and_clients_only_their_own() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    bob = await fakes.user("bob")
    for owner in (ada, bob, ada):
        await fakes.key(owner)
        fakes.clock.advance(timedelta(seconds=1))
    assert len((await _list_keys(fakes)(None, PageRequest())).items) == 3
    assert len((await _list_keys(fakes)(bob.id, PageRequest())).items) == 1
    fakes.act_as(ada)
    mine = await _list_keys(fakes)(bob.id, PageRequest())
    assert [k.user_id for k in mine.items] == [ada.id, ada.id]
    assert mine.items[0].created_at > mine.items[1].created_at


async def test_suspending_a_key_ends_its_sessions_and_a_limit_can_be_cleared() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada, credit_limit="5")
    pair = await fakes.sessions().start(Principal(ada.id, ada.role, key.api_key), sessions_valid_after=None)
    await fakes.uow.commit()
    view = await _update_key(fakes)(key.api_key, KeyPatch(status="suspended", credit_limit=None))
    await fakes.end_request()
    assert (view.subscription, view.credit_limit) == (SubscriptionStatus.SUSPENDED, None)
    committed = fakes.db.committed
    assert committed.keys[key.api_key].sessions_valid_after is not None
    assert committed.refresh_tokens[pair.refresh_token].revoked_at is not None


async def test_a_change_that_keeps_the_subscription_keeps_the_sessions() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada, credit_limit="5")
    view = await _update_key(fakes)(key.api_key, KeyPatch(credit_limit="7"))
    assert view.credit_limit == "7"
    assert (await _update_key(fakes)(key.api_key, KeyPatch())).credit_limit == "7"
    assert fakes.db.tables.keys[key.api_key].sessions_valid_after is None


async def test_moving_expiry_into_the_past_ends_the_sessions_and_instants_need_an_offset_in_range() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada)
    view = await _update_key(fakes)(key.api_key, KeyPatch(expires_at=fakes.clock.now() - timedelta(seconds=1)))
    assert view.subscription is SubscriptionStatus.EXPIRED
    assert fakes.db.tables.keys[key.api_key].sessions_valid_after is not None


async def test_a_revoked_key_is_final_revoking_again_changes_nothing_and_unknown_keys_are_not_found() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada)
    revoke, update = _revoke_key(fakes), _update_key(fakes)
    await revoke(key.api_key)
    await revoke(key.api_key)
    with pytest.raises(KeyIsRevoked):
        await update(key.api_key, KeyPatch(status="active"))
    with pytest.raises(KeyNotFound):
        await revoke("ak_unknown")
    with pytest.raises(KeyNotFound):
        await update("ak_unknown", KeyPatch(status="active"))


async def test_a_subscription_is_shown_to_its_owner_and_admins_only() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada, lifetime=timedelta(hours=1))
    subscription = GetSubscription(fakes.keys, fakes.identity, fakes.clock)
    assert (await subscription(key.api_key)).active is True
    fakes.act_as(ada)
    fakes.clock.advance(timedelta(hours=1))
    view = await subscription(key.api_key)
    assert (view.status, view.active) == (SubscriptionStatus.EXPIRED, False)
    fakes.act_as(await fakes.user("bob"))
    with pytest.raises(KeyNotFound):
        await subscription(key.api_key)


async def test_a_key_is_shown_to_its_owner_and_admins_and_is_not_found_for_anyone_else() -> None:
    fakes = Fakes()
    admin, ada = await _world(fakes)
    key = await fakes.key(ada, credit_limit="5")
    view = await _get_key(fakes)(key.api_key)
    assert (view.api_key, view.user_id, view.typeid, view.credit_limit, view.expires_at) == (
        key.api_key,
        ada.id,
        "grader",
        "5",
        key.expires_at,
    )
    fakes.act_as(ada)
    assert (await _get_key(fakes)(key.api_key)).api_key == key.api_key
    own = await fakes.key(admin)
    for caller, api_key in ((await fakes.user("bob"), None), (admin, own.api_key)):
        fakes.act_as(caller, api_key)
        with pytest.raises(KeyNotFound):
            await _get_key(fakes)(key.api_key)
    with pytest.raises(KeyNotFound):
        await _get_key(fakes)("ak_unknown")


async def test_a_shown_key_says_its_subscription_now_a_revoked_one_included() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada, lifetime=timedelta(hours=1))
    suspended = await fakes.key(ada, status=KeyStatus.SUSPENDED)
    revoked = await fakes.key(ada)
    await _revoke_key(fakes)(revoked.api_key)
    get = _get_key(fakes)
    assert (await get(key.api_key)).subscription is SubscriptionStatus.ACTIVE
    assert (await get(suspended.api_key)).subscription is SubscriptionStatus.SUSPENDED
    assert (await get(revoked.api_key)).subscription is SubscriptionStatus.REVOKED
    fakes.clock.advance(timedelta(hours=1))
    assert (await get(key.api_key)).subscription is SubscriptionStatus.EXPIRED


async def test_a_signed_login_gets_a_key_scoped_pair() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada)
    pair = await _key_login(fakes)(_signed(fakes, key.api_key, "ADA"))
    assert (pair.api_key, pair.typeid) == (key.api_key, "grader")
    assert fakes.access_tokens.issued[pair.access_token].api_key == key.api_key


@pytest.mark.parametrize("skew", [-301, 301])
async def test_a_timestamp_more_than_300_seconds_away_is_stale(skew: int) -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key = await fakes.key(ada)
    with pytest.raises(StaleTimestamp):
        await _key_login(fakes)(_signed(fakes, key.api_key, skew=skew))
    await _key_login(fakes)(_signed(fakes, key.api_key, skew=skew - (1 if skew > 0 else -1)))


async def test_a_wrong_secret_an_unknown_key_a_foreign_username_and_an_inactive_owner_look_alike() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    await fakes.user("bob")
    key = await fakes.key(ada)
    login = _key_login(fakes)
    for request in (
        _signed(fakes, key.api_key, secret="sk_wrong"),
        _signed(fakes, "ak_unknown"),
        _signed(fakes, key.api_key, "bob"),
    ):
        with pytest.raises(InvalidSignature):
            await login(request)
    await fakes.users.update(ada.id, role=None, is_active=False)
    with pytest.raises(InvalidSignature):
        await login(_signed(fakes, key.api_key))


async def test_a_nonce_works_once_per_key() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    key, other = await fakes.key(ada), await fakes.key(ada)
    login = _key_login(fakes)
    await login(_signed(fakes, key.api_key))
    with pytest.raises(ReplayedNonce):
        await login(_signed(fakes, key.api_key))
    await login(_signed(fakes, other.api_key))


async def test_a_revoked_or_inactive_key_refuses_login_after_spending_the_nonce() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    revoked = await fakes.key(ada, status=KeyStatus.REVOKED)
    suspended = await fakes.key(ada, status=KeyStatus.SUSPENDED)
    with pytest.raises(KeyRevoked):
        await _key_login(fakes)(_signed(fakes, revoked.api_key))
    with pytest.raises(SubscriptionInactive):
        await _key_login(fakes)(_signed(fakes, suspended.api_key))
    await fakes.end_request()
    assert (suspended.api_key, "nonce-0123456789ab") in fakes.db.committed.nonces


async def test_secrets_are_reencrypted_with_the_new_master_key_and_unreadable_ones_reported() -> None:
    fakes = Fakes()
    _, ada = await _world(fakes)
    old = await fakes.key(ada)
    fakes.cipher.keys = ["k2"]
    current = await fakes.key(ada)
    fakes.cipher.keys = ["k0"]
    lost = await fakes.key(ada)
    fakes.cipher = FakeCipher(["k2", "k1"])
    report = await ReencryptSecrets(fakes.keys, fakes.cipher, fakes.uow)()
    await fakes.end_request()
    assert (report.reencrypted, report.current, report.unreadable) == (1, 1, [lost.api_key])
    ciphertext = fakes.db.committed.keys[old.api_key].secret_ciphertext
    assert not fakes.cipher.needs_reencryption(ciphertext)
    assert fakes.cipher.decrypt(ciphertext, old.api_key) == KEY_SECRET
    assert fakes.db.committed.keys[current.api_key].secret_ciphertext.startswith(b"k2\n")


async def test_an_admin_acting_through_a_key_has_no_admin_powers() -> None:
    fakes = Fakes()
    admin, ada = await _world(fakes)
    await fakes.key(ada)
    own = await fakes.key(admin)
    fakes.act_as(admin, own.api_key)
    assert [k.api_key for k in (await _list_keys(fakes)(None, PageRequest())).items] == [own.api_key]
    with pytest.raises(KeyNotFound):
        await GetSubscription(fakes.keys, fakes.identity, fakes.clock)(
            next(k for k in fakes.db.tables.keys if k != own.api_key)
        )
