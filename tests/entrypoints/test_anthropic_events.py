"""A generation run as Anthropic's events: content blocks numbered as they open, each closed when the next opens."""

import json
from collections.abc import AsyncGenerator
from typing import Any

import msgspec

from application.ports.llm import StreamEvent, TextDelta, ToolCallDelta, UsageReport
from entrypoints.http.anthropic_events import MESSAGE_EVENTS, Event, message_events
from tests.support.fakes import Fakes
from tests.support.generation_runs import generation_run


async def _provider(events: list[StreamEvent]) -> AsyncGenerator[StreamEvent]:
    for event in events:
        yield event


async def _wire(events: list[StreamEvent]) -> list[tuple[str, dict[str, Any]]]:
    """Each frame as (event, data), its data checked against the Struct the document names for its event."""
    run = await generation_run(_provider(events), Fakes(), max_tokens=50)
    frames = b"".join([frame async for frame in message_events(run)]).decode()
    parsed = []
    for block in frames.split("\n\n")[:-1]:
        event, data = block.split("\n")
        name, payload = event.removeprefix("event: "), data.removeprefix("data: ")
        (documented,) = MESSAGE_EVENTS.events[name]
        assert isinstance(msgspec.json.decode(payload, type=Event), documented)
        parsed.append((name, json.loads(payload)))
    return parsed


async def test_text_then_two_tool_calls_are_three_blocks_in_order() -> None:
    wire = await _wire(
        [
            TextDelta("Let me check.", tokens=3),
            ToolCallDelta(0, "", id="call_a", name="get_weather", tokens=1),
            ToolCallDelta(0, '{"city":', tokens=1),
            ToolCallDelta(1, '{"city":"Rome"}', id="call_b", name="get_weather", tokens=1),
            ToolCallDelta(0, '"Paris"}', tokens=1),
            UsageReport(7, 7),
        ]
    )
    assert [name for name, _ in wire] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    starts = [data for name, data in wire if name == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [(0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert [s["content_block"].get("id") for s in starts] == [None, "call_a", "call_b"]
    deltas = [(data["index"], data["delta"]) for name, data in wire if name == "content_block_delta"]
    assert deltas == [
        (0, {"type": "text_delta", "text": "Let me check."}),
        (1, {"type": "input_json_delta", "partial_json": '{"city":'}),
        (2, {"type": "input_json_delta", "partial_json": '{"city":"Rome"}'}),
        (1, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
    ]
    final = wire[-2][1]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert (final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == (7, 7)


async def test_a_call_without_an_id_gets_one_from_its_generation() -> None:
    wire = await _wire([ToolCallDelta(0, "{}", name="now", tokens=1), UsageReport(7, 1)])
    start = next(data for name, data in wire if name == "content_block_start")
    assert start["content_block"]["id"].startswith("toolu_")
    assert start["content_block"]["id"].endswith("_0")


async def test_the_final_usage_counts_the_cached_prompt_tokens_apart_as_anthropic_does() -> None:
    wire = await _wire([TextDelta("Hi", tokens=1), UsageReport(30, 1, cached_input_tokens=20, cache_write_tokens=4)])
    start = wire[0][1]["message"]["usage"]
    assert (start["cache_read_input_tokens"], start["cache_creation_input_tokens"]) == (None, None)
    assert wire[-2][1]["usage"] == {
        "input_tokens": 6,
        "output_tokens": 1,
        "cache_read_input_tokens": 20,
        "cache_creation_input_tokens": 4,
    }
