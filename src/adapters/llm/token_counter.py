"""Token counting, offline: real BPE encodings per model family (quicktok ships cl100k, o200k, llama3 and qwen3),
and a deterministic approximation for the families whose tokenizer is not available."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import quicktok

from application.ports.llm import ChatMessage, TokenCounter

_PIECES = re.compile(r"\w+|[^\w\s]")
CHARS_PER_TOKEN = 4
MESSAGE_FRAMING_TOKENS = 4
CHAT_FRAMING_TOKENS = 2
IMAGE_TOKENS = 85  # an image at OpenAI's low detail; vendors that take images report their exact usage


class ApproximateTokenCounter(TokenCounter):
    def count_text(self, text: str) -> int:
        # Each word or punctuation mark is at least one token; long words are split every 4 characters.
        return sum(-(-len(piece) // CHARS_PER_TOKEN) for piece in _PIECES.findall(text))

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        framed = sum(self.count_text(counted_text(message)) + _framing(message) for message in messages)
        return framed + CHAT_FRAMING_TOKENS


def counted_text(message: ChatMessage) -> str:
    """The message's text and, for an assistant's tool calls, their names and arguments."""
    calls = "".join(call.name + call.arguments for call in message.tool_calls)
    return message.text + calls


def _framing(message: ChatMessage) -> int:
    return MESSAGE_FRAMING_TOKENS + len(message.images) * IMAGE_TOKENS


@dataclass(frozen=True, slots=True)
class ChatFraming:
    """Tokens a chat template adds: around each message (plus its role), and once per chat (reply priming)."""

    per_message: int
    per_chat: int


OPENAI_FRAMING = ChatFraming(per_message=3, per_chat=3)  # OpenAI cookbook: <|start|>role<|message|>...<|end|>
LLAMA3_FRAMING = ChatFraming(per_message=4, per_chat=5)  # <|begin_of_text|>, headers, <|eot_id|>
CHATML_FRAMING = ChatFraming(per_message=4, per_chat=3)  # <|im_start|>role\n...<|im_end|>\n, <|im_start|>assistant\n


@dataclass(frozen=True, slots=True)
class Family:
    pattern: re.Pattern[str]
    encoding: str
    framing: ChatFraming


def _family(pattern: str, encoding: str, framing: ChatFraming) -> Family:
    return Family(re.compile(pattern), encoding, framing)


# First match wins; matched against the lowercased upstream model id without its org prefix ("meta-llama/").
FAMILIES = (
    _family(r"^gpt-oss", "o200k_harmony", OPENAI_FRAMING),
    _family(r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4)([-.:]|$)", "o200k_base", OPENAI_FRAMING),
    _family(r"^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada)([-.:]|$)", "cl100k_base", OPENAI_FRAMING),
    _family(r"^(meta-)?llama-?3", "llama3", LLAMA3_FRAMING),
    _family(r"^(qwen|qwq)", "qwen3", CHATML_FRAMING),
    # SmolLM2 has its own 49k BPE (not shipped); qwen3's is the closest shipped one (~15 % fewer tokens) and its
    # chat template is the same ChatML. The local server reports exact usage anyway.
    _family(r"^smollm", "qwen3", CHATML_FRAMING),
)


class EncodingTokenCounter(TokenCounter):
    """Exact BPE counts with a shipped encoding (quicktok: no download, works offline); the vocabulary is loaded
    on first use (~0.5 s) and shared by every counter of that encoding."""

    def __init__(self, encoding: str, framing: ChatFraming) -> None:
        self.encoding = encoding
        self._framing = framing

    def count_text(self, text: str) -> int:
        # a client's text is text: "<tool_call>" or "<|im_end|>" in it is not the encoding's special token
        return len(_encoding(self.encoding).encode_ordinary(text))

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        framing = self._framing
        return framing.per_chat + sum(
            framing.per_message
            + self.count_text(message.role)
            + self.count_text(counted_text(message))
            + len(message.images) * IMAGE_TOKENS
            for message in messages
        )


@cache
def _encoding(name: str) -> quicktok.Tokenizer:
    return quicktok.get_encoding(name)


@cache
def _counter(encoding: str, framing: ChatFraming) -> EncodingTokenCounter:
    return EncodingTokenCounter(encoding, framing)


def counter_for_model(upstream_model: str, fallback: TokenCounter) -> TokenCounter:
    """The encoding of the model's family; `fallback` (the approximation) for families whose tokenizer is not
    public or not shipped: Claude, Gemini, Mistral, DeepSeek, and any unknown id."""
    name = upstream_model.lower().rsplit("/", 1)[-1]
    for family in FAMILIES:
        if family.pattern.search(name):
            return _counter(family.encoding, family.framing)
    return fallback
