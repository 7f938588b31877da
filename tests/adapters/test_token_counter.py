"""Offline token counting: the shipped encodings give the published token ids, chosen per model family."""

import httpx
import pytest

from adapters.llm.openai_chat import OpenAIChatProvider
from adapters.llm.token_counter import (
    CHATML_FRAMING,
    LLAMA3_FRAMING,
    OPENAI_FRAMING,
    ApproximateTokenCounter,
    EncodingTokenCounter,
    _encoding,
    counter_for_model,
)
from application.ports.llm import ChatMessage

APPROXIMATE = ApproximateTokenCounter()


@pytest.mark.parametrize(
    ("encoding", "text", "ids"),
    [
        ("cl100k_base", "hello world", [15339, 1917]),
        ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),  # tiktoken's README
        ("o200k_base", "hello world", [24912, 2375]),
        ("llama3", "hello world", [15339, 1917]),  # llama3 extends cl100k's first 100k merges
        ("qwen3", "hello world", [14990, 1879]),
    ],
)
def test_the_shipped_encodings_give_the_published_ids(encoding: str, text: str, ids: list[int]) -> None:
    assert list(_encoding(encoding).encode(text)) == ids
    assert EncodingTokenCounter(encoding, OPENAI_FRAMING).count_text(text) == len(ids)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("openai/gpt-oss-20b", "o200k_harmony"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
        ("llama3.2:1b", "llama3"),  # Ollama's naming
        ("Qwen/Qwen2.5-7B-Instruct", "qwen3"),
        ("qwen3:0.6b", "qwen3"),
        ("smollm2-135m", "qwen3"),
    ],
)
def test_each_family_gets_its_encoding(model: str, encoding: str) -> None:
    counter = counter_for_model(model, fallback=APPROXIMATE)
    assert isinstance(counter, EncodingTokenCounter)
    assert counter.encoding == encoding


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "gemini-2.5-flash", "mistral-large", "m-1", "gpt4all", "o"])
def test_families_without_a_shipped_tokenizer_use_the_fallback(model: str) -> None:
    assert counter_for_model(model, fallback=APPROXIMATE) is APPROXIMATE


def test_encodings_are_loaded_once_and_shared() -> None:
    assert counter_for_model("gpt-4o", APPROXIMATE) is counter_for_model("gpt-4o-mini", APPROXIMATE)
    assert _encoding("o200k_base") is _encoding("o200k_base")


@pytest.mark.parametrize(("encoding", "special"), [("qwen3", "<tool_call>"), ("cl100k_base", "<|endoftext|>")])
def test_a_special_tokens_text_is_counted_as_text(encoding: str, special: str) -> None:
    """A client may write what an encoding reserves: counted as the ordinary text it is, never an error."""
    counter = EncodingTokenCounter(encoding, CHATML_FRAMING)
    assert counter.count_text(special) == len(_encoding(encoding).encode_ordinary(special)) > 1


def test_a_chat_counts_its_template_framing() -> None:
    chat = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello world")]
    # o200k: "Be brief." = 3, "hello world" = 2, "system" = "user" = 1
    assert counter_for_model("gpt-4o", APPROXIMATE).count_messages(chat) == 3 + (3 + 1 + 3) + (3 + 1 + 2)
    llama = EncodingTokenCounter("llama3", LLAMA3_FRAMING)
    assert llama.count_messages(chat) == 5 + (4 + 1 + 3) + (4 + 1 + 2)
    assert EncodingTokenCounter("qwen3", CHATML_FRAMING).count_messages([]) == 3


async def test_an_adapter_counts_with_its_models_encoding() -> None:
    async with httpx.AsyncClient() as client:
        provider = OpenAIChatProvider(client, "http://127.0.0.1:9/v1", None, APPROXIMATE)
        assert provider.counter_for("gpt-4o").count_text("hello world") == 2
        assert provider.counter_for("some-unknown-model") is APPROXIMATE
        assert provider.token_counter is APPROXIMATE
