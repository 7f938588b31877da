"""Gemini streamGenerateContent (SSE)."""

from urllib.parse import quote

import msgspec

from adapters.llm.sse_lines import (
    SseProvider,
    WireReader,
    decode_payload,
    plausible_usage,
    split_system,
    token_count,
)
from application.ports.llm import CompletionRequest, UsageReport
from domain.errors import UpstreamError


class _Part(msgspec.Struct):
    text: str | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content = msgspec.field(default_factory=_Content)
    finish_reason: str | None = None


class _UsageMetadata(msgspec.Struct, rename="camel"):
    """`promptTokenCount` includes `cachedContentTokenCount`; thinking tokens (`thoughtsTokenCount`) are apart
    from `candidatesTokenCount`."""

    prompt_token_count: object = None
    cached_content_token_count: object = None
    candidates_token_count: object = None
    thoughts_token_count: object = None


class _Chunk(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    error: object = None


_DECODER = msgspec.json.Decoder(_Chunk)


class GeminiProvider(SseProvider):
    """`base_url` is the host; the adapter adds /v1beta/models/{model}:streamGenerateContent?alt=sse."""

    vendor = "gemini"

    def _url(self, request: CompletionRequest) -> str:
        model = quote(request.upstream_model, safe="")
        return f"{self._base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"

    def _auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._required_key()}

    def _body(self, request: CompletionRequest) -> dict[str, object]:
        system, chat = split_system(request.messages)
        config: dict[str, object] = {"maxOutputTokens": request.max_tokens}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.json_output:
            config["responseMimeType"] = "application/json"
        body: dict[str, object] = {
            "contents": [
                {"role": "model" if message.role == "assistant" else "user", "parts": [{"text": message.content}]}
                for message in chat
            ],
            "generationConfig": config,
        }
        if system is not None:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def _reader(self) -> WireReader:
        return _GeminiReader()


class _GeminiReader(WireReader):
    def read(self, data: bytes) -> str:
        chunk = decode_payload(_DECODER, data, GeminiProvider.vendor)
        if chunk.error is not None:
            raise UpstreamError("gemini reported an error mid-stream.")
        if (usage := chunk.usage_metadata) is not None:
            self.usage = _usage(usage)
        if not chunk.candidates:
            return ""
        candidate = chunk.candidates[0]
        self.finished = self.finished or candidate.finish_reason is not None
        return "".join(part.text or "" for part in candidate.content.parts)


def _usage(usage: _UsageMetadata) -> UsageReport | None:
    answer, thoughts = token_count(usage.candidates_token_count), token_count(usage.thoughts_token_count, absent=0)
    if answer is None or thoughts is None:
        return None
    return plausible_usage(
        usage.prompt_token_count,
        answer + thoughts,
        cached_input_tokens=usage.cached_content_token_count,
        reasoning_tokens=thoughts,
    )
