"""Anthropic's Messages surface on fakes: its blocks mapped onto the provider port, billed as every generation,
the parameters no provider honours refused before any charge, and `count_tokens` free and equal to the billed
prompt."""

from typing import Any

import msgspec
import pytest

from application.generations.anthropic_messages import (
    AnthropicMessages,
    CountMessageTokens,
    MessagesPrompt,
    MessagesRequest,
    TextBlock,
    ToolUseBlock,
    anthropic_message,
)
from application.ports.llm import (
    ChatMessage,
    ImagePart,
    NamedTool,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    UsageReport,
)
from domain.catalog import ModelNotFound
from domain.credits import Credits
from domain.errors import InvalidInput, UnsupportedParameter
from domain.pricing import Usage
from domain.user import User
from domain.wallet import EntryKind
from tests.support.fakes import PRICING, Fakes
from tests.support.fakes.generations import ScriptedProvider

ANSWER = [TextDelta("Hello", tokens=1), TextDelta(" there", tokens=1), UsageReport(4, 2)]
WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def _client(fakes: Fakes) -> User:
    await fakes.model("m1")
    user = await fakes.funded_client("ada")
    fakes.act_as(user)
    return user


def _messages(fakes: Fakes) -> AnthropicMessages:
    return AnthropicMessages(fakes.identity, fakes.start_generation())


def _request(**fields: Any) -> MessagesRequest:
    """The request as the route decodes it from JSON."""
    body = {"model": "m1", "max_tokens": 10, "messages": [{"role": "user", "content": "a b c"}]} | fields
    return msgspec.convert(body, MessagesRequest)


async def test_a_message_is_billed_as_a_generation_and_answered_in_anthropics_shape() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    ada = await _client(fakes)
    run = await _messages(fakes)(_request(max_tokens=5))
    message = anthropic_message(run.started, await run.whole_answer())
    (generation_id,) = fakes.db.committed.generations
    assert message.id == f"msg_{generation_id.hex}"
    assert (message.model, message.content, message.stop_reason) == ("m1", [TextBlock("Hello there")], "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 2)
    assert fakes.balance(ada.id) == Credits.whole(100) - PRICING.cost(Usage(4, 2))
    assert [e.kind for e in fakes.db.committed.ledger][1:] == [EntryKind.GENERATION, EntryKind.GENERATION]


async def test_the_system_prompt_leads_the_chat_and_each_tool_result_is_a_tool_message_before_its_user_text() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    request = _request(
        system=[{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Thanks."},
                    {"type": "tool_result", "tool_use_id": "t1", "content": "18 °C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [{"type": "text", "text": "down"}],
                        "is_error": True,
                    },
                ],
            },
        ],
        tools=[WEATHER],
    )
    await (await _messages(fakes)(request)).outcome()
    (sent,) = fakes.provider.requests
    assert list(sent.messages) == [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather in Paris and Rome?"),
        ChatMessage(
            "assistant",
            "Looking.",
            tool_calls=(
                ToolCall("t1", "get_weather", '{"city":"Paris"}'),
                ToolCall("t2", "get_weather", '{"city":"Rome"}'),
            ),
        ),
        ChatMessage("tool", "18 °C", tool_call_id="t1"),
        ChatMessage("tool", "Error: down", tool_call_id="t2"),
        ChatMessage("user", "Thanks."),
    ]
    assert sent.options.tools == (Tool("get_weather", WEATHER["input_schema"], "The weather of a city."),)


async def test_an_image_block_is_an_image_part_and_a_base64_source_a_data_url() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
    ]
    await (await _messages(fakes)(_request(messages=[{"role": "user", "content": content}]))).outcome()
    (sent,) = fakes.provider.requests
    assert sent.messages[0].content == (
        TextPart("Compare"),
        ImagePart("data:image/png;base64,iVBORw0KGgo="),
        ImagePart("https://example.com/b.png"),
    )


async def test_sampling_stop_sequences_and_the_tool_choice_reach_the_provider() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    request = _request(
        max_tokens=7,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=["END", "\n\n"],
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    )
    await (await _messages(fakes)(request)).outcome()
    (sent,) = fakes.provider.requests
    options = sent.options
    assert (sent.max_tokens, options.temperature, options.top_p, options.stop) == (7, 0.2, 0.9, ("END", "\n\n"))
    assert (options.tool_choice, options.parallel_tool_calls) == (NamedTool("get_weather"), False)


@pytest.mark.parametrize(
    ("choice", "expected"), [({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none")]
)
async def test_a_tool_choice_maps_onto_the_ports(choice: dict[str, str], expected: str) -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    await (await _messages(fakes)(_request(tools=[WEATHER], tool_choice=choice))).outcome()
    (sent,) = fakes.provider.requests
    assert (sent.options.tool_choice, sent.options.parallel_tool_calls) == (expected, None)


async def test_a_tool_call_of_the_answer_is_a_tool_use_block_and_its_stop_reason() -> None:
    fakes = Fakes(
        provider=ScriptedProvider(
            [ToolCallDelta(0, '{"city":', id="call_1", name="get_weather", tokens=2), ToolCallDelta(0, '"Oslo"}')]
        )
    )
    await _client(fakes)
    run = await _messages(fakes)(_request(tools=[WEATHER]))
    message = anthropic_message(run.started, await run.whole_answer())
    assert message.content == [ToolUseBlock("call_1", "get_weather", {"city": "Oslo"})]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [({"top_k": 5}, "top_k"), ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking")],
)
async def test_a_parameter_no_provider_honours_is_refused_before_any_charge(
    fields: dict[str, Any], parameter: str
) -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    ada = await _client(fakes)
    with pytest.raises(UnsupportedParameter) as refused:
        await _messages(fakes)(_request(**fields))
    assert refused.value.parameter == parameter
    assert (fakes.provider.requests, fakes.db.committed.generations) == ([], {})
    assert fakes.balance(ada.id) == Credits.whole(100)


async def test_thinking_disabled_is_no_parameter_at_all() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    await _client(fakes)
    await (await _messages(fakes)(_request(thinking={"type": "disabled"}))).outcome()
    assert len(fakes.provider.requests) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice.name"),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]},
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]},
            "messages[0].content[0]",
        ),
    ],
)
async def test_a_block_or_tool_choice_out_of_place_is_refused_before_any_charge(
    fields: dict[str, Any], field: str
) -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    ada = await _client(fakes)
    with pytest.raises(InvalidInput) as refused:
        await _messages(fakes)(_request(**fields))
    assert refused.value.field == field
    assert (fakes.provider.requests, fakes.db.committed.generations) == ([], {})
    assert fakes.balance(ada.id) == Credits.whole(100)


async def test_counting_tokens_gives_the_prompt_the_generation_is_billed_for_and_costs_nothing() -> None:
    fakes = Fakes(provider=ScriptedProvider(ANSWER))
    ada = await _client(fakes)
    chat = {"model": "m1", "system": "Be brief.", "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    body = chat | {"tools": [WEATHER]}
    count = CountMessageTokens(fakes.catalog, fakes.providers)
    counted = await count(msgspec.convert(body, MessagesPrompt))
    assert (await count(msgspec.convert(chat, MessagesPrompt))).input_tokens == 3 + 4 < counted.input_tokens
    assert (fakes.provider.requests, fakes.db.committed.generations) == ([], {})
    assert fakes.balance(ada.id) == Credits.whole(100)
    run = await _messages(fakes)(msgspec.convert(body | {"max_tokens": 5}, MessagesRequest))
    assert run.started.input_tokens == counted.input_tokens
    (precharge,) = [e for e in fakes.db.committed.ledger if e.kind is EntryKind.GENERATION]
    assert -precharge.amount == PRICING.input_cost(counted.input_tokens)
    await run.outcome()


async def test_counting_tokens_needs_an_enabled_model_of_the_catalog() -> None:
    fakes = Fakes()
    await fakes.model("off", enabled=False)
    count = CountMessageTokens(fakes.catalog, fakes.providers)
    for model in ("off", "unknown"):
        prompt = msgspec.convert({"model": model, "messages": [{"role": "user", "content": "hi"}]}, MessagesPrompt)
        with pytest.raises(ModelNotFound):
            await count(prompt)
