"""Generations on fakes, from the order to the settlement: pre-charge and reserve, the event stream, the
non-streaming answers (ours and OpenAI's), reading them back, the reaper and the housekeeping."""

import asyncio
from datetime import timedelta
from uuid import UUID

import pytest

from application.generations.create import CreateGeneration, completed_view
from application.generations.housekeeping import HousekeepingPolicy, PurgeExpiredRecords
from application.generations.openai_chat import (
    ChatCompletionRequest,
    CreateChatCompletion,
    JsonObjectFormat,
    OpenAIMessage,
    TextContent,
    chat_completion,
)
from application.generations.queries import GetGeneration, ListGenerations
from application.generations.reaper import INTERRUPTED, ReapExpiredGenerations
from application.generations.run import Delta, Finished, GenerationPolicy, Started
from application.generations.start import Order
from application.generations.views import GenerationRequest, GenerationView, Message
from application.limits.quota import RateLimitPolicy
from application.ports.comparison import TextReference
from application.ports.llm import ChatMessage, JsonOutput, TextDelta, UsageReport
from application.ports.persistence import PageRequest, RefreshGrant
from domain.catalog import CatalogModel, ModelNotFound
from domain.credits import Credits
from domain.errors import InvalidInput, ProviderUnavailable, RateLimited, UpstreamError
from domain.generation import GenerationNotFound, GenerationStatus
from domain.pricing import Usage
from domain.user import Role, User
from domain.wallet import EntryKind, InsufficientBalance
from tests.support.fakes import PRICING, Fakes
from tests.support.fakes.generations import ScriptedProvider, Stall

HELLO = [Message(role="user", content="one two three")]  # 4 prompt tokens for the WordCounter
ANSWER = [TextDelta("Hello", tokens=1), TextDelta(" there", tokens=1), UsageReport(4, 2)]


async def _client(fakes: Fakes, funds: str = "100", *, max_output_tokens: int = 100) -> User:
    await fakes.model("m1", max_output_tokens=max_output_tokens)
    user = await fakes.user("ada")
    if funds != "0":
        await fakes.fund(user.id, funds)
    fakes.act_as(user)
    return user


def _create(
    fakes: Fakes, *, policy: GenerationPolicy | None = None, limits: RateLimitPolicy | None = None
) -> CreateGeneration:
    return CreateGeneration(fakes.identity, fakes.start_generation(policy=policy, limits=limits))


async def _whole(create: CreateGeneration, request: GenerationRequest) -> GenerationView:
    """The non-streaming answer, as the route makes it of the run."""
    run = await create(request)
    return completed_view(run.started, await run.whole_answer())


def _ledger_kinds(fakes: Fakes) -> list[EntryKind]:
    return [e.kind for e in fakes.db.committed.ledger]


async def test_a_completed_generation_is_billed_its_usage_once_and_releases_its_reserve() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    user = await _client(fakes)
    view = await _whole(_create(fakes), GenerationRequest(model="m1", messages=HELLO, max_tokens=10))
    cost = PRICING.cost(Usage(4, 2))
    assert (view.status, view.output and view.output.content, view.cost) == (
        GenerationStatus.COMPLETED,
        "Hello there",
        str(cost),
    )
    assert view.balance == str(Credits.whole(100) - cost) == str(fakes.balance(user.id))
    assert _ledger_kinds(fakes) == [EntryKind.ADMIN_ADJUSTMENT, EntryKind.GENERATION, EntryKind.GENERATION]
    assert len(fakes.billing.settlements) == 1
    assert fakes.db.committed.wallets[user.id].reserved == Credits.zero()
    assert fakes.provider.closed == 1


async def test_while_it_runs_the_prompt_is_precharged_and_the_most_its_completion_can_cost_is_reserved() -> None:
    fakes = Fakes(provider=ScriptedProvider([TextDelta("a", tokens=1), Stall()]))
    user = await _client(fakes)
    run = await _create(fakes)(GenerationRequest(model="m1", messages=HELLO, max_tokens=10))
    wallet = fakes.db.committed.wallets[user.id]
    assert (wallet.balance, wallet.reserved) == (Credits.whole(100) - PRICING.input_cost(4), PRICING.output_cost(10))
    outcome = await run.aclose()
    assert (outcome.status, outcome.usage) == (GenerationStatus.CANCELLED, Usage(4, 1))
    assert fakes.balance(user.id) == Credits.whole(100) - PRICING.cost(Usage(4, 1))


async def test_the_stream_is_started_deltas_then_one_finished() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    run = await _create(fakes)(GenerationRequest(model="m1", messages=HELLO, stream=True))
    events = [event async for event in run]
    assert isinstance(events[0], Started)
    assert events[0].max_tokens == 100
    assert events[1:3] == [Delta("Hello"), Delta(" there")]
    (finished,) = events[3:]
    assert isinstance(finished, Finished)
    assert finished.outcome.status is GenerationStatus.COMPLETED
    assert (await run.aclose()) is finished.outcome
    assert len(fakes.billing.settlements) == 1


async def test_an_upstream_error_midway_bills_what_came_and_the_answer_is_the_error() -> None:
    fakes = Fakes(provider=ScriptedProvider([TextDelta("Hel", tokens=1), UpstreamError("broke off")]))
    user = await _client(fakes)
    with pytest.raises(UpstreamError):
        await _whole(_create(fakes), GenerationRequest(model="m1", messages=HELLO))
    (generation,) = fakes.db.committed.generations.values()
    assert (generation.generation.status, generation.generation.error_code) == (
        GenerationStatus.FAILED,
        "upstream_error",
    )
    assert fakes.balance(user.id) == Credits.whole(100) - PRICING.cost(Usage(4, 1))


async def test_a_provider_failing_before_its_first_token_refunds_the_precharge() -> None:
    fakes = Fakes(provider=ScriptedProvider([ProviderUnavailable("overloaded")]))
    user = await _client(fakes)
    with pytest.raises(ProviderUnavailable):
        await _create(fakes)(GenerationRequest(model="m1", messages=HELLO))
    assert fakes.balance(user.id) == Credits.whole(100)
    assert _ledger_kinds(fakes) == [EntryKind.ADMIN_ADJUSTMENT, EntryKind.GENERATION, EntryKind.REFUND]
    assert fakes.metrics.probes[0].reports[0] == ("upstream_error", "provider_unavailable")


async def test_a_reader_cancelled_while_the_upstream_is_silent_settles_once_for_what_was_relayed() -> None:
    stall = Stall()
    fakes = Fakes(provider=ScriptedProvider([TextDelta("a", tokens=1), stall, TextDelta("b", tokens=1)]))
    user = await _client(fakes)
    run = await _create(fakes)(GenerationRequest(model="m1", messages=HELLO, stream=True))

    async def read() -> None:
        async for _ in run:
            pass

    reader = asyncio.create_task(read())
    await stall.reached.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    stall.resume()
    await run.aclose()
    assert [(s.status, s.usage.output_tokens) for s in fakes.billing.settlements] == [(GenerationStatus.CANCELLED, 1)]
    assert fakes.balance(user.id) == Credits.whole(100) - PRICING.cost(Usage(4, 1))


async def test_the_runs_a_request_opened_are_settled_when_it_ends_even_unread() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    create = _create(fakes)
    for _ in range(2):
        await create(GenerationRequest(model="m1", messages=HELLO))
    await fakes.open_runs.close_all()
    assert [s.status for s in fakes.billing.settlements] == [GenerationStatus.CANCELLED] * 2


@pytest.mark.parametrize("funds", ["0", "0.003", "-1"])
async def test_nothing_starts_while_the_balance_does_not_cover_the_prompt(funds: str) -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes, funds)
    with pytest.raises(InsufficientBalance):
        await _whole(_create(fakes), GenerationRequest(model="m1", messages=HELLO))
    assert fakes.db.committed.generations == {}
    assert fakes.provider.requests == []


async def test_the_reserves_of_running_generations_count_against_the_next_one() -> None:
    fakes = Fakes(provider=ScriptedProvider([TextDelta("a", tokens=1), Stall()]))
    await _client(fakes, "0.2")  # a run takes 0.004 (its prompt) and holds 0.2 (100 completion tokens)
    create = _create(fakes)
    await create(GenerationRequest(model="m1", messages=HELLO))
    with pytest.raises(InsufficientBalance):
        await create(GenerationRequest(model="m1", messages=HELLO))
    await fakes.open_runs.close_all()


async def test_an_unknown_or_disabled_model_and_too_many_tokens_are_refused() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes, max_output_tokens=10)
    await fakes.model("off", enabled=False)
    create = _create(fakes)
    for model in ("nope", "off"):
        with pytest.raises(ModelNotFound):
            await _whole(create, GenerationRequest(model=model, messages=HELLO))
    with pytest.raises(InvalidInput) as refused:
        await _whole(create, GenerationRequest(model="m1", messages=HELLO, max_tokens=11))
    assert refused.value.field == "max_tokens"


async def test_a_model_whose_provider_is_not_configured_is_unavailable() -> None:
    fakes = Fakes()
    await _client(fakes)
    fakes.db.tables.models["m1"] = CatalogModel("m1", "openai", "gpt", "", PRICING, 100, True)
    with pytest.raises(ProviderUnavailable):
        await _whole(_create(fakes), GenerationRequest(model="m1", messages=HELLO))


async def test_the_providers_default_cap_applies_when_the_client_sets_none() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER, default_max_tokens=16))
    await _client(fakes)
    run = await _create(fakes)(GenerationRequest(model="m1", messages=HELLO))
    assert (run.started.max_tokens, fakes.provider.requests[0].max_tokens) == (16, 16)
    await run.aclose()


async def test_tokens_per_minute_are_counted_after_settlement_and_refuse_the_next_generation() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    create = _create(fakes, limits=RateLimitPolicy(user_tpm=6))
    await _whole(create, GenerationRequest(model="m1", messages=HELLO))
    with pytest.raises(RateLimited):
        await _whole(create, GenerationRequest(model="m1", messages=HELLO))
    assert len(fakes.db.committed.generations) == 1


async def test_an_openai_chat_completion_is_billed_the_same_and_says_why_it_stopped() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    chat = CreateChatCompletion(fakes.identity, fakes.start_generation())
    request = ChatCompletionRequest(
        model="m1",
        messages=[
            OpenAIMessage(role="developer", content="Be brief."),
            OpenAIMessage(role="user", content=[TextContent("one two"), TextContent(" three")]),
        ],
        max_tokens=50,
        max_completion_tokens=2,
        response_format=JsonObjectFormat(),
    )
    run = await chat(request)
    completion = chat_completion(run.started, await run.whole_answer())
    (sent,) = fakes.provider.requests
    assert [(m.role, m.text) for m in sent.messages] == [("system", "Be brief."), ("user", "one two three")]
    assert (sent.max_tokens, sent.options.json_output) == (2, JsonOutput())
    (generation,) = fakes.db.committed.generations
    assert completion.id == f"chatcmpl-{generation.hex}"
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == ("Hello there", "length")
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (4, 6)


async def test_an_openai_stream_is_the_same_run_and_its_whole_answer_raises_the_error() -> None:
    fakes = Fakes(provider=ScriptedProvider([TextDelta("a", tokens=1), UpstreamError("gone")]))
    await _client(fakes)
    chat = CreateChatCompletion(fakes.identity, fakes.start_generation())
    request = ChatCompletionRequest(model="m1", messages=[OpenAIMessage(role="user", content="hi")])
    run = await chat(request)
    assert isinstance((await run.outcome()).error, UpstreamError)
    with pytest.raises(UpstreamError):
        await (await chat(request)).whole_answer()


async def test_generations_are_read_back_by_their_owner_and_admins_only() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    ada = await _client(fakes)
    create = _create(fakes)
    first = await _whole(create, GenerationRequest(model="m1", messages=HELLO))
    fakes.clock.advance(timedelta(seconds=1))
    second = await _whole(create, GenerationRequest(model="m1", messages=HELLO))
    page = await ListGenerations(fakes.identity, fakes.records)(PageRequest(limit=1))
    assert [g.id for g in page.items] == [second.id]
    get = GetGeneration(fakes.identity, fakes.records)
    assert (await get(first.id)).output == first.output
    fakes.act_as(await fakes.user("root", role=Role.ADMIN))
    assert (await get(first.id)).id == first.id
    fakes.act_as(await fakes.user("bob"))
    for generation_id in (first.id, UUID(int=999)):
        with pytest.raises(GenerationNotFound):
            await get(generation_id)
    fakes.act_as(ada)
    rest = await ListGenerations(fakes.identity, fakes.records)(PageRequest(limit=1, cursor=page.next_cursor))
    assert ([g.id for g in rest.items], rest.next_cursor) == ([first.id], None)


async def test_the_reaper_settles_runs_whose_lease_ran_out_from_their_last_checkpoint() -> None:
    policy = GenerationPolicy(lease=timedelta(seconds=30), checkpoint_tokens=2, checkpoint_interval=timedelta(hours=1))
    steps = [TextDelta(c, tokens=1) for c in "abc"]
    fakes = Fakes(provider=ScriptedProvider([*steps, Stall()]))
    user = await _client(fakes)
    run = await _create(fakes, policy=policy)(GenerationRequest(model="m1", messages=HELLO))
    relayed = 0
    async for event in run:
        relayed += isinstance(event, Delta)
        if relayed == 3:
            break
    fakes.billing.failing_settlements = 10**6  # its database is gone until its process dies
    await run.aclose()
    fakes.billing.failing_settlements = 0
    fakes.clock.advance(timedelta(seconds=31))
    reaper = ReapExpiredGenerations(fakes.billing, fakes.metrics, fakes.clock, fakes.ids)
    assert await reaper() == 1
    assert await reaper() == 0
    (generation,) = fakes.db.committed.generations.values()
    g = generation.generation
    assert (g.status, g.error_code, g.usage) == (GenerationStatus.FAILED, INTERRUPTED, Usage(4, 2))
    assert fakes.balance(user.id) == Credits.whole(100) - PRICING.cost(Usage(4, 2))
    assert fakes.metrics.reaped_counts == [1]


async def test_the_reaper_works_through_a_backlog_batch_after_batch() -> None:
    fakes = Fakes(provider=ScriptedProvider([TextDelta("a", tokens=1), Stall()]))
    await _client(fakes, "1000")
    policy = GenerationPolicy(lease=timedelta(seconds=1))
    start = fakes.start_generation(policy=policy)
    principal = fakes.identity.principal
    assert principal is not None
    for _ in range(101):
        await start(Order(principal, "m1", [ChatMessage("user", "hi")], max_tokens=1))
    fakes.billing.failing_settlements = 1000
    fakes.clock.advance(timedelta(seconds=2))
    await fakes.open_runs.close_all()
    fakes.billing.failing_settlements = 0
    reaper = ReapExpiredGenerations(fakes.billing, fakes.metrics, fakes.clock, fakes.ids)
    assert await reaper() == 101
    assert fakes.metrics.reaped_counts == [101]


async def test_housekeeping_purges_each_kind_past_its_cutoff_batch_after_batch() -> None:
    fakes = Fakes()
    user = await fakes.user("ada")
    key = await fakes.key(user)
    now = fakes.clock.now()
    tables = fakes.db.tables
    for n in range(3):
        tables.nonces[key.api_key, f"old-{n}"] = now - timedelta(seconds=1)
    tables.nonces[key.api_key, "live"] = now + timedelta(seconds=1)
    tables.throttle["s", now - timedelta(days=2)] = 1
    tables.throttle["s", now] = 1
    await fakes.idempotency.claim("scope", "old", "f")
    await fakes.refresh_tokens.issue(RefreshGrant(user.id, UUID(int=7), None), now=now, expires_at=now)
    tables.references[UUID(int=8)] = TextReference(UUID(int=8), user.id, key.api_key, None, "x", now)
    tables.references[UUID(int=9)] = TextReference(
        UUID(int=9), user.id, key.api_key, None, "x", now - timedelta(days=29)
    )
    await fakes.uow.commit()
    fakes.clock.advance(timedelta(hours=49))
    purge = PurgeExpiredRecords(
        fakes.housekeeping, fakes.clock, HousekeepingPolicy(reference_retention=timedelta(days=30), batch=2)
    )
    assert await purge() == 4 + 2 + 1 + 1 + 1  # every nonce by now, both windows, a key, a family, a reference
    after = fakes.db.committed
    assert (after.nonces, after.throttle, after.idempotency, after.refresh_tokens) == ({}, {}, {}, {})
    assert list(after.references) == [UUID(int=8)]
