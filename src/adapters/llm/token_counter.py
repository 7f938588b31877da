"""An offline, deterministic approximation of BPE token counts."""

import re
from collections.abc import Sequence

from application.ports.llm import ChatMessage, TokenCounter

_PIECES = re.compile(r"\w+|[^\w\s]")
CHARS_PER_TOKEN = 4
MESSAGE_FRAMING_TOKENS = 4
CHAT_FRAMING_TOKENS = 2


class ApproximateTokenCounter(TokenCounter):
    def count_text(self, text: str) -> int:
        # Each word or punctuation mark is at least one token; long words are split every 4 characters.
        return sum(-(-len(piece) // CHARS_PER_TOKEN) for piece in _PIECES.findall(text))

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        framed = sum(self.count_text(message.content) + MESSAGE_FRAMING_TOKENS for message in messages)
        return framed + CHAT_FRAMING_TOKENS
