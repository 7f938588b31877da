"""The built-in offline provider: deterministic pseudo-text, one token per delta, paced like a real model.

It honours every parameter: sampling ones trivially (it is deterministic; `seed` changes its answer like any other
field), `stop` by ending the text before a stop sequence, images by reading them as much as it reads text (not at
all), JSON output with a JSON answer (valid against the schema when one is given), and tools with a deterministic
tool-call mode: given tools (and a `tool_choice` other than "none"), it calls the named or the first tool with
arguments generated from its JSON Schema, streamed in fragments; once the last message is a tool result, it answers
with text."""

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import replace

import msgspec

from application.ports.llm import (
    ChatMessage,
    CompletionRequest,
    LLMProvider,
    NamedTool,
    StreamEvent,
    TextDelta,
    TokenCounter,
    Tool,
    ToolCallDelta,
    UsageReport,
    prompt_tokens,
)

VOCABULARY = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod",
    "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "ad", "minim", "veniam",
    "quis", "nostrud", "exercitation", "ullamco", "laboris", "nisi", "aliquip",
)  # fmt: skip
DEFAULT_SCALE = 10
_SCALE_PHRASE = re.compile(r"from\s+0\s+to\s+(\d{1,9})", re.IGNORECASE)
_JSON_FRAME = ('{"score": ', ', "explanation": "', '"}')
_JSON_MIN_DELTAS = len(_JSON_FRAME) + 1  # the frame plus the score
_JSON_FRAGMENT = re.compile(r'"(?:[^"\\]|\\.)*"|[^"]+')  # a string, or what lies between strings
_NUMBER_SPAN = 100
_MAX_NUMBER = 10**12
_MAX_DEPTH = 32
_MAX_ITEMS = 16


DEFAULT_MAX_TOKENS = 64


class SimulatorProvider(LLMProvider):
    def __init__(self, counter: TokenCounter, token_delay_ms: int) -> None:
        self._counter = counter
        self._delay_s = token_delay_ms / 1000

    @property
    def token_counter(self) -> TokenCounter:
        return self._counter

    @property
    def default_max_tokens(self) -> int:
        return DEFAULT_MAX_TOKENS

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        rng = random.Random(_seed(request))  # noqa: S311 - pseudo-text, not a secret
        deltas = _answer(rng, request)
        for delta in deltas:
            await asyncio.sleep(self._delay_s)  # even at 0: stays cancellable and lets the loop breathe
            yield delta
        yield UsageReport(input_tokens=prompt_tokens(self._counter, request), output_tokens=len(deltas))


def _seed(request: CompletionRequest) -> int:
    """Of everything but the stop sequences: they end the same answer sooner."""
    unstopped = replace(request, options=replace(request.options, stop=()))
    return int.from_bytes(hashlib.sha256(msgspec.json.encode(unstopped)).digest()[:8], "big")


def _answer(rng: random.Random, request: CompletionRequest) -> list[TextDelta | ToolCallDelta]:
    """One token per delta, at most max_tokens of them."""
    if (tool := _tool_to_call(request)) is not None:
        return _tool_call(rng, tool, request.max_tokens)
    json_output = request.options.json_output
    if json_output is None:
        pieces = _text_pieces(rng, request.max_tokens)
    elif json_output.schema is None:
        pieces = _json_pieces(rng, request)
    else:
        pieces = _fragments(_value(rng, json_output.schema.schema), request.max_tokens)
    return [TextDelta(piece, tokens=1) for piece in _until_stop(pieces, request.options.stop)]


def _tool_to_call(request: CompletionRequest) -> Tool | None:
    options = request.options
    answered = bool(request.messages) and request.messages[-1].role == "tool"
    if not options.tools or options.tool_choice == "none" or answered:
        return None
    if isinstance(options.tool_choice, NamedTool):
        return next(tool for tool in options.tools if tool.name == options.tool_choice.name)
    return options.tools[0]


def _tool_call(rng: random.Random, tool: Tool, max_tokens: int) -> list[TextDelta | ToolCallDelta]:
    """The call's id and name come with its first arguments fragment."""
    call_id = f"call_{rng.getrandbits(96):024x}"
    fragments = _fragments(_value(rng, tool.parameters), max_tokens)
    first, *rest = fragments
    return [
        ToolCallDelta(0, first, id=call_id, name=tool.name, tokens=1),
        *(ToolCallDelta(0, fragment, tokens=1) for fragment in rest),
    ]


def _fragments(value: object, max_tokens: int) -> list[str]:
    """The JSON text of `value` in pieces (strings and what lies between them), the last ones joined so that there
    are at most max_tokens: the JSON stays whole whatever the cap."""
    pieces = _JSON_FRAGMENT.findall(msgspec.json.encode(value).decode())
    if len(pieces) <= max_tokens:
        return pieces
    return [*pieces[: max_tokens - 1], "".join(pieces[max_tokens - 1 :])]


def _value(rng: random.Random, schema: Mapping[str, object], depth: int = 0) -> object:
    """A value valid against the simple JSON Schemas (types, properties, items, enum, const, bounds); null below
    _MAX_DEPTH levels, and at most _MAX_ITEMS items an array, whatever the schema asks."""
    if depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(enum := schema.get("enum"), list) and enum:
        return rng.choice(enum)
    for combined in ("anyOf", "oneOf", "allOf"):
        if isinstance(options := schema.get(combined), list) and options and isinstance(options[0], Mapping):
            return _value(rng, options[0], depth + 1)
    return _typed(rng, schema, _type(schema), depth)


def _typed(rng: random.Random, schema: Mapping[str, object], kind: str, depth: int) -> object:
    if kind == "object":
        properties = _schema(schema.get("properties"))
        return {name: _value(rng, _schema(sub), depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = min(max(1, _bound(schema, "minItems", 1)), _MAX_ITEMS)
        return [_value(rng, _schema(schema.get("items")), depth + 1) for _ in range(count)]
    if kind in {"integer", "number"}:
        low = _bound(schema, "minimum", 0)
        number = rng.randint(low, max(low, _bound(schema, "maximum", low + _NUMBER_SPAN)))
        return number if kind == "integer" else float(number)
    if kind == "boolean":
        return rng.random() < 0.5
    return None if kind == "null" else " ".join(_words(rng, 2))


def _schema(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _type(schema: Mapping[str, object]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else "string"


def _bound(schema: Mapping[str, object], key: str, default: int) -> int:
    value = schema.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return default
    return int(min(max(value, -_MAX_NUMBER), _MAX_NUMBER))


def _until_stop(pieces: list[str], stop: Sequence[str]) -> list[str]:
    """The pieces up to the first stop sequence (excluded), as a model stops."""
    if not stop:
        return pieces
    kept: list[str] = []
    text = ""
    for piece in pieces:
        found = [i for i in (f"{text}{piece}".find(s, max(0, len(text) - len(s) + 1)) for s in stop) if i >= 0]
        if found:
            if rest := piece[: min(found) - len(text)]:
                kept.append(rest)
            return kept
        kept.append(piece)
        text += piece
    return kept


def _text_pieces(rng: random.Random, count: int) -> list[str]:
    return [f"{word} " for word in _words(rng, count)]


def _words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(VOCABULARY) for _ in range(count)]


def _json_pieces(rng: random.Random, request: CompletionRequest) -> list[str]:
    """`{"score": n, "explanation": "..."}` in exactly max_tokens deltas, or in one when max_tokens is too small."""
    score = rng.randint(0, _scale(request.messages))
    if request.max_tokens < _JSON_MIN_DELTAS:
        return [msgspec.json.encode({"score": score, "explanation": ""}).decode()]
    explanation = _words(rng, request.max_tokens - _JSON_MIN_DELTAS)
    opening, middle, closing = _JSON_FRAME
    return [opening, str(score), middle, *explanation[:1], *(f" {word}" for word in explanation[1:]), closing]


def _scale(messages: Sequence[ChatMessage]) -> int:
    """The N of the last "from 0 to N" in the prompt (a rendered `{scale}`), else DEFAULT_SCALE."""
    found = [match for message in messages for match in _SCALE_PHRASE.findall(message.text)]
    return int(found[-1]) if found else DEFAULT_SCALE
