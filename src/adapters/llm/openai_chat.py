"""OpenAI Chat Completions (also OpenRouter, vLLM, Ollama, llama.cpp server, LM Studio, DeepSeek, ...)."""

import msgspec

from adapters.llm.sse_lines import SseProvider, WireReader, decode_payload, plausible_usage
from application.ports.llm import CompletionRequest
from domain.errors import UpstreamError


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta = msgspec.field(default_factory=_Delta)
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: object = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: object = None


class _Usage(msgspec.Struct):
    """`prompt_tokens` includes the cached ones, `completion_tokens` the reasoning ones."""

    prompt_tokens: object = None
    completion_tokens: object = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: object = None


_DECODER = msgspec.json.Decoder(_Chunk)


class OpenAIChatProvider(SseProvider):
    """`base_url` ends with /v1; without an API key no Authorization header is sent (local servers)."""

    vendor = "openai"

    def _url(self, request: CompletionRequest) -> str:
        return f"{self._base_url}/chat/completions"

    def _auth_headers(self) -> dict[str, str]:
        return {} if self._api_key is None else {"authorization": f"Bearer {self._api_key}"}

    def _body(self, request: CompletionRequest) -> dict[str, object]:
        body: dict[str, object] = {
            "model": request.upstream_model,
            "messages": [{"role": message.role, "content": message.content} for message in request.messages],
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.json_output:
            body["response_format"] = {"type": "json_object"}
        return body

    def _reader(self) -> WireReader:
        return _OpenAIReader()


class _OpenAIReader(WireReader):
    def read(self, data: bytes) -> str:
        chunk = decode_payload(_DECODER, data, OpenAIChatProvider.vendor)
        if chunk.error is not None:
            raise UpstreamError("openai reported an error mid-stream.")
        if (usage := chunk.usage) is not None:
            prompt, completion = usage.prompt_tokens_details, usage.completion_tokens_details
            self.usage = plausible_usage(
                usage.prompt_tokens,
                usage.completion_tokens,
                cached_input_tokens=None if prompt is None else prompt.cached_tokens,
                reasoning_tokens=None if completion is None else completion.reasoning_tokens,
            )
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        self.finished = self.finished or choice.finish_reason is not None
        return choice.delta.content or ""
