"""Accounts on fakes: registration, login (and its throttle), sessions and their refresh, who the caller is."""

import dataclasses
from datetime import timedelta

import pytest

from application.accounts.authenticate import Authenticate
from application.accounts.create_admin import CreateAdmin
from application.accounts.login import Credentials, InvalidCredentials, LoginUser
from application.accounts.me import GetMe, GetMyBalance, ListMyTransactions
from application.accounts.policy import AccountPolicy, window_start
from application.accounts.refresh import Logout, RefreshRequest, RefreshSession, TokenReused
from application.accounts.register import RegisterUser, Registration
from application.accounts.sessions import session_cutoff
from application.ports.comparison import KeyChanges
from application.ports.persistence import PageRequest
from application.ports.security import InvalidToken
from domain.api_key import KeyRevoked, KeyStatus, SubscriptionInactive
from domain.credits import Credits
from domain.errors import RateLimited, Unauthenticated
from domain.user import Principal, Role, UsernameTaken
from domain.wallet import EntryKind
from tests.support.fakes import ACCOUNTS, PASSWORD, Fakes

ADDRESS = "198.51.100.7"
THROTTLED = dataclasses.replace(ACCOUNTS, login_failure_limit=2, registrations_per_hour=2)


def _register(fakes: Fakes, policy: AccountPolicy = ACCOUNTS) -> RegisterUser:
    f = fakes
    return RegisterUser(f.users, f.ledger, f.hasher, f.throttle, f.uow, f.clock, f.ids, policy)


def _login(fakes: Fakes, policy: AccountPolicy = ACCOUNTS) -> LoginUser:
    f = fakes
    return LoginUser(f.users, f.hasher, f.throttle, f.sessions(policy), f.uow, f.clock, policy)


def _authenticate(fakes: Fakes) -> Authenticate:
    return Authenticate(fakes.access_tokens, fakes.principals, fakes.clock)


def _refresh(fakes: Fakes) -> RefreshSession:
    f = fakes
    return RefreshSession(f.refresh_tokens, f.principals, f.sessions(), f.uow, f.clock)


async def test_registering_creates_a_client_whose_wallet_starts_at_the_signup_credits() -> None:
    fakes = Fakes()
    policy = dataclasses.replace(ACCOUNTS, signup_credits=Credits.whole(5))
    view = await _register(fakes, policy)(Registration(username="ada", password=PASSWORD), client_address=ADDRESS)
    await fakes.end_request()
    assert (view.username, view.role, view.balance) == ("ada", Role.CLIENT, "5")
    assert fakes.balance(view.id) == Credits.whole(5)
    assert [e.kind for e in fakes.db.committed.ledger] == [EntryKind.SIGNUP]


async def test_without_signup_credits_the_wallet_starts_empty_and_the_ledger_has_no_row() -> None:
    fakes = Fakes()
    view = await _register(fakes)(Registration(username="ada", password=PASSWORD), client_address=ADDRESS)
    assert view.balance == "0"
    assert fakes.db.committed.ledger == []


async def test_a_taken_username_in_any_case_is_refused_and_the_attempt_still_counts() -> None:
    fakes = Fakes()
    await fakes.user("Ada")
    register = _register(fakes, THROTTLED)
    with pytest.raises(UsernameTaken):
        await register(Registration(username="ada", password=PASSWORD), client_address=ADDRESS)
    await fakes.end_request()
    window = window_start(fakes.clock.now(), THROTTLED.registration_window)
    assert fakes.throttle.hits(f"register:addr:{ADDRESS}", window) == 1


async def test_registrations_past_the_hourly_limit_per_address_wait_for_the_next_window() -> None:
    fakes = Fakes()
    register = _register(fakes, THROTTLED)
    for name in ("ada", "bob"):
        await register(Registration(username=name, password=PASSWORD), client_address=ADDRESS)
    with pytest.raises(RateLimited) as refused:
        await register(Registration(username="cy", password=PASSWORD), client_address=ADDRESS)
    assert 1 <= refused.value.retry_after_seconds <= 3600
    await register(Registration(username="cy", password=PASSWORD), client_address="203.0.113.9")
    fakes.clock.advance(timedelta(hours=1))
    await register(Registration(username="dee", password=PASSWORD), client_address=ADDRESS)


async def test_logging_in_issues_a_token_pair_of_the_user() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    pair = await _login(fakes)(Credentials(username="ADA", password=PASSWORD), client_address=ADDRESS)
    assert await _authenticate(fakes)(pair.access_token) == Principal(user.id, Role.CLIENT)
    assert fakes.uow.commits >= 1
    assert pair.refresh_token in fakes.db.committed.refresh_tokens


@pytest.mark.parametrize(("username", "password"), [("ada", "wrong password"), ("nobody", PASSWORD)])
async def test_a_wrong_password_and_an_unknown_user_answer_the_same(username: str, password: str) -> None:
    fakes = Fakes()
    await fakes.user("ada")
    with pytest.raises(InvalidCredentials):
        await _login(fakes)(Credentials(username=username, password=password), client_address=ADDRESS)
    assert fakes.hasher.dummy_verifications == (username == "nobody")


async def test_an_inactive_user_cannot_log_in() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    await fakes.users.update(user.id, role=None, is_active=False)
    await fakes.uow.commit()
    with pytest.raises(InvalidCredentials):
        await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)


async def test_a_hash_of_older_parameters_is_replaced_at_the_next_login() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    fakes.hasher.scheme = "v2"
    await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    assert fakes.db.committed.users[user.id].password_hash.startswith("v2$")


async def test_past_the_failure_limit_even_the_right_password_waits_for_the_window() -> None:
    fakes = Fakes()
    await fakes.user("ada")
    login = _login(fakes, THROTTLED)
    await login(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)  # a success gives back
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await login(Credentials(username="ada", password="wrong password"), client_address=ADDRESS)
        await fakes.end_request()
    with pytest.raises(RateLimited):
        await login(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    fakes.clock.advance(THROTTLED.login_window)
    await login(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)


async def test_create_admin_creates_one_or_promotes_and_reactivates_the_user_of_that_name() -> None:
    fakes = Fakes()
    f = fakes
    create_admin = CreateAdmin(f.users, f.hasher, f.uow, f.clock, f.ids)
    root = await create_admin(Registration(username="root", password=PASSWORD))
    assert (root.role, root.is_active) == (Role.ADMIN, True)
    ada = await fakes.user("ada", password="old password")
    await fakes.users.update(ada.id, role=None, is_active=False)
    promoted = await create_admin(Registration(username="ADA", password="new password"))
    await fakes.end_request()
    assert (promoted.id, promoted.role, promoted.is_active) == (ada.id, Role.ADMIN, True)
    await _login(fakes)(Credentials(username="ada", password="new password"), client_address=ADDRESS)


async def test_authentication_needs_a_token_we_issued_that_has_not_expired() -> None:
    fakes = Fakes()
    await fakes.user("ada")
    pair = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    authenticate = _authenticate(fakes)
    with pytest.raises(Unauthenticated):
        await authenticate(None)
    with pytest.raises(InvalidToken):
        await authenticate("forged")
    fakes.clock.advance(timedelta(minutes=15))
    with pytest.raises(InvalidToken):
        await authenticate(pair.access_token)


async def test_the_stored_role_counts_not_the_one_the_token_claims_and_deactivation_ends_the_token() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    pair = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    await fakes.users.update(user.id, role=Role.ADMIN, is_active=None)
    assert (await _authenticate(fakes)(pair.access_token)).role is Role.ADMIN
    await fakes.users.update(user.id, role=None, is_active=False)
    with pytest.raises(InvalidToken):
        await _authenticate(fakes)(pair.access_token)


async def test_a_token_issued_before_its_sessions_were_ended_stays_dead() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    pair = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    await fakes.users.end_sessions(user.id, session_cutoff(fakes.clock.now()))
    with pytest.raises(InvalidToken):
        await _authenticate(fakes)(pair.access_token)
    fresh = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    assert (await _authenticate(fakes)(fresh.access_token)).user_id == user.id


async def test_a_key_scoped_token_stops_with_its_key_revoked_or_suspended() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    key = await fakes.key(user)
    token = fakes.access_tokens.issue(user_id=user.id, role=user.role, api_key=key.api_key, now=fakes.clock.now())
    authenticate = _authenticate(fakes)
    assert (await authenticate(token.token)).api_key == key.api_key
    await fakes.keys.change(key.api_key, KeyChanges(status=KeyStatus.SUSPENDED))
    with pytest.raises(SubscriptionInactive):
        await authenticate(token.token)
    await fakes.keys.change(key.api_key, KeyChanges(status=KeyStatus.REVOKED))
    with pytest.raises(KeyRevoked):
        await authenticate(token.token)


async def test_me_shows_the_callers_account_balance_and_ledger_newest_first() -> None:
    fakes = Fakes()
    user = await fakes.funded_client("ada", "12.5")
    await fakes.fund(user.id, "-2.5")
    fakes.act_as(user)
    get_me = GetMe(fakes.identity, fakes.users)
    assert ((await get_me()).username, (await get_me()).balance) == ("ada", "10")
    assert (await GetMyBalance(get_me)()).balance == "10"
    page = await ListMyTransactions(fakes.identity, fakes.ledger)(PageRequest(limit=1))
    assert [t.amount for t in page.items] == ["-2.5"]
    rest = await ListMyTransactions(fakes.identity, fakes.ledger)(PageRequest(limit=1, cursor=page.next_cursor))
    assert ([t.amount for t in rest.items], rest.next_cursor) == (["12.5"], None)


async def test_me_needs_a_caller() -> None:
    fakes = Fakes()
    with pytest.raises(Unauthenticated):
        await GetMe(fakes.identity, fakes.users)()


async def test_a_refresh_token_works_once_and_its_reuse_revokes_the_whole_family() -> None:
    fakes = Fakes()
    await fakes.user("ada")
    first = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    refresh = _refresh(fakes)
    second = await refresh(RefreshRequest(refresh_token=first.refresh_token))
    with pytest.raises(TokenReused):
        await refresh(RefreshRequest(refresh_token=first.refresh_token))
    await fakes.end_request()
    with pytest.raises(TokenReused):  # the reuse was committed: the family is revoked
        await refresh(RefreshRequest(refresh_token=first.refresh_token))
    with pytest.raises(InvalidToken):
        await refresh(RefreshRequest(refresh_token=second.refresh_token))


async def test_an_unknown_or_expired_refresh_token_is_invalid() -> None:
    fakes = Fakes()
    await fakes.user("ada")
    pair = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    with pytest.raises(InvalidToken):
        await _refresh(fakes)(RefreshRequest(refresh_token="unknown"))
    fakes.clock.advance(ACCOUNTS.refresh_token_ttl)
    with pytest.raises(InvalidToken):
        await _refresh(fakes)(RefreshRequest(refresh_token=pair.refresh_token))


async def test_a_key_scoped_refresh_needs_an_active_subscription_and_is_not_consumed_when_refused() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    key = await fakes.key(user)
    pair = await fakes.sessions().start(Principal(user.id, user.role, key.api_key), sessions_valid_after=None)
    await fakes.uow.commit()
    await fakes.keys.change(key.api_key, KeyChanges(status=KeyStatus.SUSPENDED))
    await fakes.uow.commit()
    with pytest.raises(InvalidToken):
        await _refresh(fakes)(RefreshRequest(refresh_token=pair.refresh_token))
    await fakes.end_request()
    await fakes.keys.change(key.api_key, KeyChanges(status=KeyStatus.ACTIVE))
    await fakes.uow.commit()
    renewed = await _refresh(fakes)(RefreshRequest(refresh_token=pair.refresh_token))
    assert fakes.access_tokens.issued[renewed.access_token].api_key == key.api_key


async def test_logout_revokes_the_family_and_logging_out_twice_is_no_error() -> None:
    fakes = Fakes()
    await fakes.user("ada")
    pair = await _login(fakes)(Credentials(username="ada", password=PASSWORD), client_address=ADDRESS)
    logout = Logout(fakes.refresh_tokens, fakes.uow, fakes.clock)
    await logout(RefreshRequest(refresh_token=pair.refresh_token))
    await logout(RefreshRequest(refresh_token=pair.refresh_token))
    await logout(RefreshRequest(refresh_token="never issued"))
    await fakes.end_request()
    with pytest.raises(InvalidToken):
        await _refresh(fakes)(RefreshRequest(refresh_token=pair.refresh_token))
