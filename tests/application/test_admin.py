"""Admin use cases on fakes: balance adjustments (idempotent), users and their roles and generations, usage
reports, the dashboard."""

from datetime import date, timedelta
from uuid import UUID

import pytest

from application.admin.balance import AdjustBalance, BalanceAdjustment
from application.admin.dashboard import DAYS, GetDashboard, Total
from application.admin.usage import GetUsage
from application.admin.users import (
    GetUser,
    ListUserGenerations,
    ListUsers,
    ListUserTransactions,
    UpdateUser,
    UserPatch,
)
from application.generations.start import Order
from application.ports.generations import UsageGrouping
from application.ports.llm import ChatMessage, TextDelta
from application.ports.persistence import IdempotencyKeyReused, PageRequest
from application.ports.security import InvalidToken
from domain.credits import Credits, InvalidAmount
from domain.errors import InvalidInput, NotFound
from domain.pricing import Usage
from domain.user import LastAdmin, Principal, Role, User, UserNotFound
from domain.wallet import BalanceOutOfRange
from tests.support.fakes import PRICING, Fakes


def _adjust(fakes: Fakes) -> AdjustBalance:
    return AdjustBalance(fakes.identity, fakes.ledger, fakes.idempotency, fakes.uow, fakes.ids)


def _update(fakes: Fakes) -> UpdateUser:
    f = fakes
    return UpdateUser(f.users, f.refresh_tokens, f.identity, f.uow, f.clock, GetUser(f.users))


async def _admin(fakes: Fakes, name: str = "root") -> User:
    admin = await fakes.user(name, role=Role.ADMIN)
    fakes.act_as(admin)
    return admin


async def test_an_adjustment_is_one_ledger_row_with_its_reason_and_actor() -> None:
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.user("ada")
    result = await _adjust(fakes)(ada.id, BalanceAdjustment(amount="25", reason="pilot"), idempotency_key=None)
    await fakes.end_request()
    assert (result.balance, result.transaction.amount, result.transaction.reason) == ("25", "25", "pilot")
    (entry,) = fakes.db.committed.ledger
    assert (entry.user_id, entry.reason) == (ada.id, "pilot")
    assert fakes.balance(ada.id) == entry.balance_after


async def test_a_debit_may_take_the_balance_below_zero_but_not_past_the_bound() -> None:
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.user("ada")
    adjust = _adjust(fakes)
    assert (await adjust(ada.id, BalanceAdjustment(amount="-3", reason="r"), idempotency_key=None)).balance == "-3"
    with pytest.raises(BalanceOutOfRange):
        await adjust(ada.id, BalanceAdjustment(amount="-999999999999", reason="r"), idempotency_key=None)


@pytest.mark.parametrize(
    ("amount", "error"), [("0", InvalidAmount), ("1e3", InvalidAmount), ("0.0000001", InvalidAmount)]
)
async def test_an_amount_is_a_non_zero_decimal_of_at_most_six_places(amount: str, error: type[Exception]) -> None:
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.user("ada")
    with pytest.raises(error):
        await _adjust(fakes)(ada.id, BalanceAdjustment(amount=amount, reason="r"), idempotency_key=None)


async def test_adjusting_a_user_who_does_not_exist_is_not_found() -> None:
    fakes = Fakes()
    await _admin(fakes)
    with pytest.raises(NotFound):
        await _adjust(fakes)(UUID(int=999), BalanceAdjustment(amount="1", reason="r"), idempotency_key=None)


async def test_a_retry_with_the_same_key_and_body_replays_the_first_answer_and_writes_no_row() -> None:
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.user("ada")
    adjust = _adjust(fakes)
    body = BalanceAdjustment(amount="10", reason="top-up")
    first = await adjust(ada.id, body, idempotency_key="k-1")
    again = await adjust(ada.id, body, idempotency_key="k-1")
    await fakes.end_request()
    assert again == first
    assert len(fakes.db.committed.ledger) == 1
    with pytest.raises(IdempotencyKeyReused):
        await adjust(ada.id, BalanceAdjustment(amount="11", reason="top-up"), idempotency_key="k-1")


async def test_a_key_is_scoped_to_its_admin() -> None:
    fakes = Fakes()
    await _admin(fakes, "root")
    ada = await fakes.user("ada")
    body = BalanceAdjustment(amount="10", reason="top-up")
    await _adjust(fakes)(ada.id, body, idempotency_key="k-1")
    await _admin(fakes, "other")
    await _adjust(fakes)(ada.id, body, idempotency_key="k-1")
    assert str(fakes.balance(ada.id)) == "20"


async def test_an_adjustment_that_fails_leaves_its_key_unclaimed() -> None:
    """The claim rolls back with the failed posting: the key then takes another body."""
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.funded_client("ada", "999999999999")
    adjust = _adjust(fakes)
    with pytest.raises(BalanceOutOfRange):
        await adjust(ada.id, BalanceAdjustment(amount="2", reason="r"), idempotency_key="k-1")
    await fakes.end_request()
    assert (await adjust(ada.id, BalanceAdjustment(amount="-1", reason="r"), idempotency_key="k-1")).balance == (
        "999999999998"
    )


async def test_users_are_listed_oldest_first_and_one_is_shown_with_its_balance() -> None:
    fakes = Fakes()
    names = ["ada", "bob", "cy"]
    for name in names:
        await fakes.user(name)
        fakes.clock.advance(timedelta(seconds=1))
    first = await ListUsers(fakes.users)(PageRequest(limit=2))
    rest = await ListUsers(fakes.users)(PageRequest(limit=2, cursor=first.next_cursor))
    assert [u.username for u in [*first.items, *rest.items]] == names
    bob = first.items[1]
    await fakes.fund(bob.id, "3")
    assert (await GetUser(fakes.users)(bob.id)).balance == "3"
    with pytest.raises(UserNotFound):
        await GetUser(fakes.users)(UUID(int=999))


async def test_a_users_transactions_need_the_user_to_exist() -> None:
    fakes = Fakes()
    ada = await fakes.funded_client("ada", "4")
    transactions = ListUserTransactions(fakes.ledger, GetUser(fakes.users))
    assert [t.amount for t in (await transactions(ada.id, PageRequest())).items] == ["4"]
    with pytest.raises(UserNotFound):
        await transactions(UUID(int=999), PageRequest())


async def test_deactivating_ends_the_users_sessions_and_refresh_tokens() -> None:
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.user("ada")
    pair = await fakes.sessions().start(Principal(ada.id, ada.role), sessions_valid_after=None)
    await fakes.uow.commit()
    view = await _update(fakes)(ada.id, UserPatch(is_active=False))
    await fakes.end_request()
    assert view.is_active is False
    row = fakes.db.committed.users[ada.id]
    assert row.sessions_valid_after is not None
    assert fakes.db.committed.refresh_tokens[pair.refresh_token].revoked_at == fakes.clock.now()


async def test_a_promotion_keeps_the_sessions() -> None:
    fakes = Fakes()
    await _admin(fakes)
    ada = await fakes.user("ada")
    assert (await _update(fakes)(ada.id, UserPatch(role=Role.ADMIN))).role is Role.ADMIN
    assert fakes.db.committed.users[ada.id].sessions_valid_after is None


async def test_an_admin_cannot_demote_or_deactivate_their_own_account() -> None:
    fakes = Fakes()
    root = await _admin(fakes)
    await fakes.user("second", role=Role.ADMIN)
    for patch in (UserPatch(role=Role.CLIENT), UserPatch(is_active=False)):
        with pytest.raises(LastAdmin, match="their own account"):
            await _update(fakes)(root.id, patch)


async def test_the_last_active_admin_cannot_be_removed_but_one_of_two_can() -> None:
    fakes = Fakes()
    root = await _admin(fakes)
    other = await fakes.user("other", role=Role.ADMIN)
    await _update(fakes)(other.id, UserPatch(role=Role.CLIENT))
    fakes.act_as(other)  # the former admin's own token still names them; the stored role decides
    with pytest.raises(LastAdmin):
        await _update(fakes)(root.id, UserPatch(is_active=False))


async def test_updating_a_user_who_does_not_exist_is_not_found() -> None:
    fakes = Fakes()
    await _admin(fakes)
    with pytest.raises(UserNotFound):
        await _update(fakes)(UUID(int=999), UserPatch(role=Role.CLIENT))


async def test_an_admin_deactivated_meanwhile_cannot_act() -> None:
    fakes = Fakes()
    root = await _admin(fakes)
    ada = await fakes.user("ada")
    await fakes.users.update(root.id, role=None, is_active=False)
    with pytest.raises(InvalidToken):
        await _update(fakes)(ada.id, UserPatch(is_active=False))


async def test_usage_is_grouped_largest_spend_first_over_a_half_open_interval() -> None:
    fakes = Fakes()
    fakes.provider.scripts = [[TextDelta("word " * 5, tokens=5)]]
    await fakes.model("m1")
    await fakes.model("m2")
    ada, bob = await fakes.funded_client("ada"), await fakes.funded_client("bob")
    start = fakes.start_generation()
    started_at = fakes.clock.now()
    for user, model in ((ada, "m1"), (ada, "m2"), (bob, "m2")):
        run = await start(Order(Principal(user.id, user.role), model, [ChatMessage("user", "one two three")]))
        await run.outcome()
        fakes.clock.advance(timedelta(seconds=1))
    usage = GetUsage(fakes.records)
    by_model = await usage(UsageGrouping.MODEL, None, None)
    assert [(row.key, row.requests) for row in by_model.items] == [("m2", 2), ("m1", 1)]
    assert by_model.items[0].input_tokens == 8
    first_only = await usage(UsageGrouping.USER, started_at, started_at + timedelta(seconds=1))
    assert [(row.key, row.requests) for row in first_only.items] == [(str(ada.id), 1)]
    with pytest.raises(InvalidInput):
        await usage(UsageGrouping.KEY, started_at, started_at)


async def test_a_users_generations_are_theirs_newest_first_and_need_the_user_to_exist() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    ada, bob = await fakes.funded_client("ada"), await fakes.funded_client("bob")
    mine = [await fakes.generation(ada, "m1") for _ in range(3)]
    await fakes.generation(bob, "m1")
    generations = ListUserGenerations(fakes.records, GetUser(fakes.users))
    first = await generations(ada.id, PageRequest(limit=2))
    rest = await generations(ada.id, PageRequest(limit=2, cursor=first.next_cursor))
    assert [g.id for g in [*first.items, *rest.items]] == mine[::-1]
    assert rest.next_cursor is None
    with pytest.raises(UserNotFound):
        await generations(UUID(int=999), PageRequest())


def _spent_on(fakes: Fakes, day: date) -> Credits:
    rows = fakes.db.committed.generations.values()
    return sum((row.generation.cost for row in rows if row.generation.created_at.date() == day), Credits.zero())


async def test_the_dashboard_has_the_last_30_days_oldest_first_with_the_empty_ones_at_zero() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    await fakes.model("m2")
    ada = await fakes.funded_client("ada")
    await fakes.generation(ada, "m2")  # 40 days ago: out of the window
    fakes.clock.advance(timedelta(days=11))
    oldest = fakes.clock.now().date()  # 29 days before today, from its midnight: in the window
    await fakes.generation(ada, "m2")
    await fakes.generation(ada, "m1", fails=True)
    fakes.clock.advance(timedelta(days=29))
    today = fakes.clock.now().date()
    await fakes.generation(ada, "m1")
    await fakes.generation(ada, "m1")
    dashboard = await GetDashboard(fakes.records, fakes.live_runs, fakes.clock)()
    assert len(dashboard.days) == DAYS
    assert [d.label for d in dashboard.days] == [(oldest + timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert dashboard.days[0] == Total(oldest.isoformat(), 2, _spent_on(fakes, oldest))
    assert dashboard.days[-1] == Total(today.isoformat(), 2, _spent_on(fakes, today))
    assert all(d == Total(d.label, 0, Credits.zero()) for d in dashboard.days[1:-1])


async def test_the_dashboards_models_are_totalled_over_the_window_largest_spend_first() -> None:
    fakes = Fakes()
    for model in ("m1", "m2", "m3"):
        await fakes.model(model)
    ada = await fakes.funded_client("ada")
    await fakes.generation(ada, "m3")
    fakes.clock.advance(timedelta(days=DAYS))  # m3's generation is out of the window now
    await fakes.generation(ada, "m1")
    for _ in range(2):
        await fakes.generation(ada, "m2")
    one = PRICING.cost(Usage(4, 2))
    dashboard = await GetDashboard(fakes.records, fakes.live_runs, fakes.clock)()
    assert dashboard.models == [Total("m2", 2, one + one), Total("m1", 1, one)]
    assert dashboard.days[-1] == Total(fakes.clock.now().date().isoformat(), 3, one + one + one)


async def test_the_dashboard_counts_the_last_hours_failures_and_what_runs_now() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    ada = await fakes.funded_client("ada")
    await fakes.generation(ada, "m1", fails=True)
    fakes.clock.advance(timedelta(hours=1))  # that failure is more than an hour old now
    await fakes.generation(ada, "m1", fails=True)
    await fakes.generation(ada, "m1")
    fakes.provider.scripts = [[TextDelta("Hello", tokens=1)]]
    await fakes.start_generation()(Order(Principal(ada.id, ada.role), "m1", [ChatMessage("user", "a b c")]))
    dashboard = await GetDashboard(fakes.records, fakes.live_runs, fakes.clock)()
    assert (dashboard.failed_last_hour, dashboard.running, dashboard.open_streams_here) == (1, 1, 1)
    await fakes.open_runs.close_all()
    after = await GetDashboard(fakes.records, fakes.live_runs, fakes.clock)()
    assert (after.running, after.open_streams_here) == (0, 0)
