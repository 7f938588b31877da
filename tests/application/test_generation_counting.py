"""Output tokens as billed: never above `max_tokens`, exact on the simulator whatever ends the run, and counted
lazily (at checkpoints and at settlement) on the text the provider sent when it counts nothing itself."""

import dataclasses
from collections.abc import AsyncGenerator
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.llm.simulator import SimulatorProvider
from adapters.llm.token_counter import ApproximateTokenCounter
from application.generations.run import GenerationPolicy
from application.ports.llm import (
    ChatMessage,
    CompletionOptions,
    CompletionRequest,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    UsageReport,
)
from domain.credits import Credits
from domain.generation import GenerationStatus, UsageSource
from domain.pricing import Usage
from tests.support.fakes import Fakes
from tests.support.generation_runs import MODEL, deltas_of, generation_run

_EVERY_TWO_DELTAS = GenerationPolicy(checkpoint_tokens=2, checkpoint_interval=timedelta(hours=1))


async def _deltas(texts: list[str], usage: UsageReport | None = None) -> AsyncGenerator[StreamEvent]:
    for text in texts:
        yield TextDelta(text)
    if usage is not None:
        yield usage


def _simulated(max_tokens: int) -> AsyncGenerator[StreamEvent]:
    simulator = SimulatorProvider(ApproximateTokenCounter(), token_delay_ms=0)
    return simulator.stream(CompletionRequest("sim", [ChatMessage("user", "hello")], max_tokens=max_tokens))


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=30),
    max_tokens=st.integers(1, 40),
    read=st.integers(1, 30),
    reported=st.none() | st.integers(0, 10_000),
)
async def test_no_end_bills_more_output_tokens_than_max_tokens(
    texts: list[str], max_tokens: int, read: int, reported: int | None
) -> None:
    """Completed (provider usage or the estimate) or cancelled after `read` deltas: never above the cap."""
    fakes = Fakes()
    usage = None if reported is None else UsageReport(3, reported)
    run = await generation_run(_deltas(texts, usage), fakes, max_tokens=max_tokens, policy=_EVERY_TWO_DELTAS)
    await run.open()
    async for _ in deltas_of(run):
        read -= 1
        if read == 0:
            break
    await run.aclose()
    (settlement,) = fakes.billing.settlements
    assert settlement.usage.output_tokens <= max_tokens
    assert all(tokens <= max_tokens for tokens in fakes.billing.checkpoints)


async def test_an_estimate_above_max_tokens_is_billed_max_tokens() -> None:
    fakes = Fakes()
    run = await generation_run(_deltas(["a long word " * 20]), fakes, max_tokens=5)
    await run.outcome()
    (settlement,) = fakes.billing.settlements
    assert (settlement.usage.output_tokens, settlement.usage_source) == (5, UsageSource.COUNTER)


async def test_a_provider_reporting_more_than_max_tokens_is_billed_max_tokens() -> None:
    fakes = Fakes()
    run = await generation_run(_deltas(["a"], UsageReport(3, 500)), fakes, max_tokens=8)
    await run.outcome()
    (settlement,) = fakes.billing.settlements
    assert (settlement.usage.output_tokens, settlement.usage_source) == (8, UsageSource.PROVIDER)


async def test_the_providers_token_classes_are_billed_at_their_prices() -> None:
    """All of the provider's counts settle the run; reasoning, part of the output, is capped with it."""
    fakes = Fakes()
    cached = dataclasses.replace(MODEL, pricing=dataclasses.replace(MODEL.pricing, cached_input_credits=Credits(100)))
    report = UsageReport(300, 50, cached_input_tokens=250, cache_write_tokens=40, reasoning_tokens=30)
    run = await generation_run(_deltas(["a"], report), fakes, max_tokens=20, model=cached)
    outcome = await run.outcome()
    (settlement,) = fakes.billing.settlements
    assert settlement.usage == Usage(300, 20, cached_input_tokens=250, cache_write_tokens=40, reasoning_tokens=20)
    assert settlement.cost == outcome.cost == Credits(10 * 1000 + 250 * 100 + 40 * 1000 + 20 * 2000)


async def test_a_cancelled_run_bills_its_counted_prompt_at_the_input_price() -> None:
    """The provider reports its cache only at the end: a run cut short knows nothing of it."""
    fakes = Fakes()
    report = UsageReport(300, 5, cached_input_tokens=250)
    run = await generation_run(_deltas(["a", "b", "c"], report), fakes, max_tokens=20)
    await run.open()
    await run.aclose()
    (settlement,) = fakes.billing.settlements
    assert (settlement.status, settlement.usage_source) == (GenerationStatus.CANCELLED, UsageSource.COUNTER)
    assert settlement.usage.cached_input_tokens == 0


@given(max_tokens=st.integers(1, 50), read=st.integers(1, 60))
@settings(max_examples=40, deadline=None)
async def test_a_cancelled_simulator_run_is_billed_exactly_the_deltas_it_relayed(max_tokens: int, read: int) -> None:
    fakes = Fakes()
    run = await generation_run(_simulated(max_tokens), fakes, max_tokens=max_tokens, policy=_EVERY_TWO_DELTAS)
    await run.open()
    relayed = 0
    async for _ in deltas_of(run):
        relayed += 1
        if relayed == read:
            break
    await run.aclose()
    (settlement,) = fakes.billing.settlements
    expected_status = GenerationStatus.COMPLETED if read > max_tokens else GenerationStatus.CANCELLED
    assert (settlement.status, settlement.usage.output_tokens) == (expected_status, relayed)
    assert fakes.billing.checkpoints == [2 * n for n in range(1, len(fakes.billing.checkpoints) + 1)]
    assert all(tokens <= relayed for tokens in fakes.billing.checkpoints)


async def test_the_reaper_sees_exact_simulator_counts_in_checkpoints() -> None:
    """A crash leaves the last checkpoint for the reaper: on the simulator it is the exact count at that point."""
    fakes = Fakes()
    run = await generation_run(_simulated(9), fakes, max_tokens=9, policy=_EVERY_TWO_DELTAS)
    await run.outcome()
    assert fakes.billing.checkpoints == [2, 4, 6, 8]
    assert fakes.billing.settlements[0].usage.output_tokens == 9


async def test_text_is_counted_once_per_checkpoint_on_the_joined_pieces() -> None:
    class CountingCounter(ApproximateTokenCounter):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def count_text(self, text: str) -> int:
            self.calls.append(text)
            return super().count_text(text)

    counter = CountingCounter()
    fakes = Fakes()
    run = await generation_run(_deltas(["ab", "cd", "ef"]), fakes, counter=counter, policy=_EVERY_TWO_DELTAS)
    await run.outcome()
    assert counter.calls == ["abcd", "ef"]


async def _tool_call_stream(usage: UsageReport | None) -> AsyncGenerator[StreamEvent]:
    yield TextDelta("Checking.")
    yield ToolCallDelta(0, "", id="call_a", name="get_weather")
    yield ToolCallDelta(0, '{"city": ')
    yield ToolCallDelta(1, "{}", id="call_b", name="get_time")
    yield ToolCallDelta(0, '"Paris"}')
    if usage is not None:
        yield usage


async def test_tool_calls_are_relayed_assembled_and_their_names_and_arguments_billed_as_output() -> None:
    fakes = Fakes()
    counter = ApproximateTokenCounter()
    run = await generation_run(_tool_call_stream(None), fakes, max_tokens=100, counter=counter)
    relayed = [event async for event in run if isinstance(event, ToolCallDelta)]
    outcome = await run.aclose()
    assert [(d.index, d.id, d.name) for d in relayed] == [
        (0, "call_a", "get_weather"),
        (0, None, None),
        (1, "call_b", "get_time"),
        (0, None, None),
    ]
    assert outcome.tool_calls == (
        ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_b", "get_time", "{}"),
    )
    assert outcome.output == "Checking."
    (settlement,) = fakes.billing.settlements
    generated = 'Checking.get_weather{"city": get_time{}"Paris"}'
    assert (settlement.usage.output_tokens, settlement.usage_source) == (
        counter.count_text(generated),
        UsageSource.COUNTER,
    )
    reported = await generation_run(_tool_call_stream(UsageReport(3, 9)), Fakes(), max_tokens=100)
    assert (await reported.outcome()).usage.output_tokens == 9


async def test_a_simulated_tool_call_is_billed_one_token_a_fragment() -> None:
    simulator = SimulatorProvider(ApproximateTokenCounter(), token_delay_ms=0)
    tool = Tool(
        "get_weather", {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}
    )
    request = CompletionRequest("sim", [ChatMessage("user", "hi")], 50, CompletionOptions(tools=(tool,)))
    run = await generation_run(simulator.stream(request), Fakes(), max_tokens=50)
    fragments = [event async for event in run if isinstance(event, ToolCallDelta)]
    outcome = await run.aclose()
    assert outcome.status is GenerationStatus.COMPLETED
    assert outcome.usage.output_tokens == len(fragments) > 3
    assert outcome.tool_calls[0].name == "get_weather"
