"""Reference texts, comparisons and what a key spent, on fakes: a scripted model answers the score."""

import base64
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import pytest

from application.comparison.billing import GetKeyBilling, GetKeysActivity
from application.comparison.texts import (
    CompareRequest,
    CompareText,
    CreateReference,
    InvalidBase64,
    InvalidUtf8,
    KeyContext,
    KeyTokenRequired,
    NewReference,
    ReferenceNotFound,
    ReferenceQuotaExceeded,
    ReferenceStorage,
    UnparseableScore,
)
from application.ports.comparison import KeyChanges
from application.ports.llm import JsonOutput, TextDelta
from domain.api_key import ApiKey, KeyCreditLimit, KeyNotFound, KeyStatus, SubscriptionInactive
from domain.credits import Credits
from domain.errors import InvalidInput, TextTooLarge, UpstreamError
from domain.user import User
from domain.wallet import InsufficientBalance
from tests.support.fakes import Fakes
from tests.support.fakes.generations import Step

SCORE = [TextDelta('{"score": 7, "explanation": "close"}', tokens=4)]
PROSE = [TextDelta("I would rather not say.", tokens=5)]


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def _context(fakes: Fakes) -> KeyContext:
    return KeyContext(fakes.identity, fakes.keys, fakes.clock)


def _create_reference(fakes: Fakes, bytes_per_user: int = 0) -> CreateReference:
    f = fakes
    return CreateReference(_context(f), f.references, ReferenceStorage(bytes_per_user), f.uow, f.clock, f.ids)


def _compare(fakes: Fakes) -> CompareText:
    return CompareText(_context(fakes), fakes.references, fakes.profiles, fakes.start_generation())


async def _keyed(
    fakes: Fakes, *scripts: Sequence[Step], funds: str = "100", credit_limit: str | None = None
) -> tuple[User, ApiKey]:
    """`ada`, funded, acting through her key on the TypeID `grader` whose model answers `scripts`."""
    fakes.provider.scripts = [list(script) for script in scripts] or [SCORE]
    await fakes.model("m1")
    await fakes.profile("grader")
    ada = await fakes.funded_client("ada", funds)
    key = await fakes.key(ada, credit_limit=credit_limit)
    fakes.act_as(ada, key.api_key)
    return ada, key


async def _reference(fakes: Fakes, text: str = "The tower is 330 m tall.") -> UUID:
    view = await _create_reference(fakes)(NewReference(text=_b64(text), name="tower"))
    return view.reference_id


async def test_a_reference_is_stored_for_the_keys_owner() -> None:
    fakes = Fakes()
    ada, key = await _keyed(fakes)
    view = await _create_reference(fakes)(NewReference(text=_b64("Ünïcode"), name="n"))
    await fakes.end_request()
    stored = fakes.db.committed.references[view.reference_id]
    assert (stored.user_id, stored.api_key, stored.content, view.length) == (ada.id, key.api_key, "Ünïcode", 7)


@pytest.mark.parametrize(
    ("text", "error"),
    [("not base64!", InvalidBase64), (_b64(b"\xff\xfe"), InvalidUtf8), (_b64("x" * (256 * 1024 + 1)), TextTooLarge)],
)
async def test_a_text_is_base64_of_utf8_of_at_most_256_kib(text: str, error: type[Exception]) -> None:
    fakes = Fakes()
    await _keyed(fakes)
    with pytest.raises(error):
        await _create_reference(fakes)(NewReference(text=text))


async def test_an_account_keeps_at_most_its_reference_storage_in_bytes() -> None:
    fakes = Fakes()
    await _keyed(fakes)
    create = _create_reference(fakes, bytes_per_user=10)
    await create(NewReference(text=_b64("é" * 4)))  # 8 bytes
    with pytest.raises(ReferenceQuotaExceeded, match="10 bytes"):
        await create(NewReference(text=_b64("abc")))
    await create(NewReference(text=_b64("ab")))


async def test_references_need_a_key_scoped_token_with_an_active_subscription() -> None:
    fakes = Fakes()
    ada, key = await _keyed(fakes)
    fakes.act_as(ada)
    with pytest.raises(KeyTokenRequired):
        await _create_reference(fakes)(NewReference(text=_b64("x")))
    fakes.act_as(ada, key.api_key)
    await fakes.keys.change(key.api_key, KeyChanges(status=KeyStatus.SUSPENDED))
    with pytest.raises(SubscriptionInactive):
        await _create_reference(fakes)(NewReference(text=_b64("x")))
    await fakes.keys.change(key.api_key, KeyChanges(status=KeyStatus.ACTIVE))
    fakes.clock.advance(timedelta(days=31))
    with pytest.raises(SubscriptionInactive):
        await _create_reference(fakes)(NewReference(text=_b64("x")))


async def test_a_comparison_scores_with_the_typeids_prompts_and_is_billed_to_the_key() -> None:
    fakes = Fakes()
    ada, key = await _keyed(fakes)
    reference = await _reference(fakes, "330 m")
    view = await _compare(fakes)(reference, CompareRequest(text=_b64("about {scale} m")))
    (request,) = fakes.provider.requests
    assert request.options.json_output == JsonOutput()
    assert [m.text for m in request.messages] == ["Answer JSON.", "330 m vs about {scale} m on 10"]
    assert (view.score, view.scale, view.explanation, view.typeid) == (7, 10, "close", "grader")
    assert view.balance == str(fakes.balance(ada.id))
    (generation,) = fakes.db.committed.generations.values()
    assert (generation.generation.api_key, generation.generation.kind.value) == (key.api_key, "comparison")
    assert str(generation.generation.cost) == view.cost


async def test_an_unusable_answer_is_retried_once_then_refused_with_both_attempts_billed() -> None:
    fakes = Fakes()
    ada, _ = await _keyed(fakes, PROSE, PROSE)
    reference = await _reference(fakes)
    with pytest.raises(UnparseableScore):
        await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
    generations = list(fakes.db.committed.generations.values())
    assert len(generations) == 2
    spent = sum((g.generation.cost for g in generations), Credits.zero())
    assert fakes.balance(ada.id) == Credits.whole(100) - spent


async def test_a_retry_that_scores_answers_with_the_cost_of_both() -> None:
    fakes = Fakes()
    await _keyed(fakes, PROSE, SCORE)
    reference = await _reference(fakes)
    view = await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
    costs = [g.generation.cost for g in fakes.db.committed.generations.values()]
    assert view.cost == str(sum(costs, Credits.zero()))
    assert view.usage.output_tokens == 9


async def test_a_score_outside_the_scale_is_unusable() -> None:
    fakes = Fakes()
    out_of_scale = [TextDelta('```json\n{"score": 11}\n```', tokens=3)]
    await _keyed(fakes, out_of_scale, out_of_scale)
    with pytest.raises(UnparseableScore):
        await _compare(fakes)(await _reference(fakes), CompareRequest(text=_b64("text")))


async def test_a_provider_failure_is_raised_after_billing_what_it_produced() -> None:
    fakes = Fakes()
    ada, _ = await _keyed(fakes, [TextDelta("{", tokens=1), UpstreamError("broke off")])
    with pytest.raises(UpstreamError):
        await _compare(fakes)(await _reference(fakes), CompareRequest(text=_b64("text")))
    (generation,) = fakes.db.committed.generations.values()
    assert generation.generation.usage.output_tokens == 1
    assert fakes.balance(ada.id) == Credits.whole(100) - generation.generation.cost


async def test_another_accounts_reference_is_not_found() -> None:
    fakes = Fakes()
    await _keyed(fakes)
    reference = await _reference(fakes)
    bob = await fakes.user("bob")
    bobs_key = await fakes.key(bob)
    fakes.act_as(bob, bobs_key.api_key)
    for reference_id in (reference, UUID(int=999)):
        with pytest.raises(ReferenceNotFound):
            await _compare(fakes)(reference_id, CompareRequest(text=_b64("text")))


async def test_a_key_that_spent_its_limit_and_a_wallet_that_is_empty_refuse_comparisons() -> None:
    fakes = Fakes()
    ada, _ = await _keyed(fakes, funds="100", credit_limit="0.000001")
    reference = await _reference(fakes)
    await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
    with pytest.raises(KeyCreditLimit):
        await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
    await fakes.fund(ada.id, str(-fakes.balance(ada.id)))
    with pytest.raises(InsufficientBalance):
        await _compare(fakes)(reference, CompareRequest(text=_b64("text")))


async def test_a_deleted_typeid_makes_the_subscription_inactive() -> None:
    fakes = Fakes()
    await _keyed(fakes)
    reference = await _reference(fakes)
    del fakes.db.tables.profiles["grader"]
    with pytest.raises(SubscriptionInactive):
        await _compare(fakes)(reference, CompareRequest(text=_b64("text")))


async def test_a_keys_billing_sums_its_comparisons_per_model_over_the_interval() -> None:
    fakes = Fakes()
    _, key = await _keyed(fakes)
    reference = await _reference(fakes)
    since = fakes.clock.now()
    for _ in range(2):
        await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
        fakes.clock.advance(timedelta(minutes=1))
    billing = GetKeyBilling(fakes.keys, fakes.records, fakes.identity)
    report = await billing(key.api_key, since, None)
    costs = [g.generation.cost for g in fakes.db.committed.generations.values()]
    assert (report.requests, report.credits_spent, report.typeid) == (2, str(sum(costs, Credits.zero())), "grader")
    assert [row.key for row in report.by_model] == ["m1"]
    assert report.last_used_at == since + timedelta(minutes=1)
    assert (await billing(key.api_key, None, since)).requests == 0
    with pytest.raises(InvalidInput):
        await billing(key.api_key, since, since)
    fakes.act_as(await fakes.user("bob"))
    with pytest.raises(KeyNotFound):
        await billing(key.api_key, None, None)


async def test_key_activity_counts_the_last_24_hours_most_recent_first() -> None:
    fakes = Fakes()
    ada, key = await _keyed(fakes)
    idle = await fakes.key(ada)
    reference = await _reference(fakes)
    await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
    fakes.clock.advance(timedelta(hours=25))
    await _compare(fakes)(reference, CompareRequest(text=_b64("text")))
    activity = await GetKeysActivity(fakes.records, fakes.clock)()
    assert [(row.api_key, row.requests_24h) for row in activity.items] == [(key.api_key, 1), (idle.api_key, 0)]
    assert activity.items[1].last_used_at is None
