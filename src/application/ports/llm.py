"""What a model provider must offer: a stream of text and tool-call deltas and, when the provider reports it, its
usage. The request is vendor-neutral: every chat surface (native, OpenAI, Anthropic) maps its wire format to it, and
every adapter maps it to its vendor's."""

from abc import abstractmethod
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec

Role = Literal["system", "user", "assistant", "tool"]
ImageDetail = Literal["auto", "low", "high"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL: a `data:<media type>;base64,<data>` URL (inline) or an http(s) URL the provider fetches."""

    url: str
    detail: ImageDetail | None = None

    @property
    def inline(self) -> tuple[str, str] | None:
        """(media type, base64 data) of a data: URL, None for an http(s) URL."""
        head, comma, data = self.url.partition(",")
        if not comma or not head.startswith("data:") or not head.endswith(";base64"):
            return None
        return head.removeprefix("data:").removesuffix(";base64"), data


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model made; `arguments` is its JSON object as text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """`content` is text, or parts (text and images, in order). An assistant message may carry `tool_calls`; a
    `tool` message answers the call `tool_call_id` with its content."""

    role: Role
    content: str | tuple[ContentPart, ...]
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def parts(self) -> tuple[ContentPart, ...]:
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return self.content

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return () if isinstance(self.content, str) else tuple(p for p in self.content if isinstance(p, ImagePart))


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; `parameters` is the JSON Schema of its arguments (an object)."""

    name: str
    parameters: Mapping[str, object] = field(default_factory=lambda: {"type": "object", "properties": {}})
    description: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class NamedTool:
    """Call this tool (and no other)."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedTool


@dataclass(frozen=True, slots=True)
class JsonSchema:
    name: str
    schema: Mapping[str, object]
    description: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class JsonOutput:
    """The answer is one JSON object; with `schema`, one valid against it."""

    schema: JsonSchema | None = None


@dataclass(frozen=True, slots=True)
class CompletionOptions:
    """How to generate, beyond the messages. Each field left at its default is not sent; a provider that cannot
    honour one that is set refuses the request (`unsupported_parameter`) before anything is charged."""

    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    json_output: JsonOutput | None = None


Parameter = Literal[
    "temperature",
    "top_p",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "images",
    "image_urls",  # images the provider would fetch (http(s) URLs, not data: URLs)
    "image_detail",  # an image's `detail` other than "auto"
]


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    upstream_model: str
    messages: Sequence[ChatMessage]
    max_tokens: int
    options: CompletionOptions = CompletionOptions()
    retry_unavailable: bool = True
    """Ask an unavailable upstream (refused, 429, 503) again after a bounded pause; False when the route has
    another deployment to fail over to, which answers sooner."""

    def parameters(self) -> list[Parameter]:
        """The parameters this request sets, for a provider to check against what it honours."""
        options = self.options
        images = [image for message in self.messages for image in message.images]
        used: list[tuple[Parameter, bool]] = [
            ("temperature", options.temperature is not None),
            ("top_p", options.top_p is not None),
            ("stop", bool(options.stop)),
            ("seed", options.seed is not None),
            ("tools", bool(options.tools)),
            ("tool_choice", options.tool_choice is not None),
            ("parallel_tool_calls", options.parallel_tool_calls is not None),
            ("response_format", options.json_output is not None),
            ("images", bool(images)),
            ("image_urls", any(image.inline is None for image in images)),
            ("image_detail", any(image.detail not in {None, "auto"} for image in images)),
        ]
        return [name for name, is_set in used if is_set]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """`tokens`: the delta's exact token count when the provider knows it (the simulator does); None means the
    run counts the text with the model's tokenizer."""

    text: str
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the tool call number `index` of the answer: its first piece carries `id` and `name`, every piece
    a fragment of its JSON `arguments`. `tokens` as for TextDelta (the name and the arguments are output)."""

    index: int
    arguments: str
    id: str | None = None
    name: str | None = None
    tokens: int | None = None

    @property
    def text(self) -> str:
        """What the model generated in this piece, as counted for billing."""
        return (self.name or "") + self.arguments


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token counts as the provider reported them (trusted only when plausible: non-negative, bounded, and the
    cached, cache-written and reasoning tokens within the totals they are part of). `input_tokens` counts every
    prompt token, cached and written ones included; `output_tokens` every generated one, reasoning included."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


StreamEvent = TextDelta | ToolCallDelta | UsageReport


class TokenCounter(Protocol):
    @abstractmethod
    def count_text(self, text: str) -> int: ...

    @abstractmethod
    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of a chat, including the per-message framing the model sees."""


def prompt_tokens(counter: TokenCounter, request: CompletionRequest) -> int:
    """The prompt as the model reads it: the chat and, when tools are given, their definitions (as JSON text)."""
    tools = counter.count_text(msgspec.json.encode(request.options.tools).decode()) if request.options.tools else 0
    return counter.count_messages(request.messages) + tools


class LLMProvider(Protocol):
    @abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        """An async generator of deltas, then at most one UsageReport at the end.

        Closing it (`aclose()`, or cancelling the task iterating it) MUST close the upstream connection at once.
        Raises ProviderUnavailable (cannot connect, not configured, 429/503 after bounded retries) or
        UpstreamError (error status, malformed stream, stall past the read timeout, abrupt close). Retries
        happen only before the first delta.
        """

    def unsupported(self, request: CompletionRequest) -> Parameter | None:
        """The first parameter of `request` this provider cannot honour, or None (checked before the stream opens:
        a parameter is never silently dropped)."""
        return None

    @property
    def default_max_tokens(self) -> int | None:
        """The output cap when the client sets none; None means the model's own `max_output_tokens`."""
        return None

    @property
    @abstractmethod
    def token_counter(self) -> TokenCounter:
        """Counts tokens the way this provider's models do (used when it reports no usage)."""

    def counter_for(self, upstream_model: str) -> TokenCounter:
        """The counter for one of its models (providers whose models tokenize differently override this)."""
        return self.token_counter


class ProviderRegistry(Protocol):
    @abstractmethod
    def get(self, provider: str) -> LLMProvider:
        """MUST raise ProviderUnavailable for a provider name that is unknown or not configured."""

    @abstractmethod
    def names(self) -> frozenset[str]:
        """Every name a deployment may give: the built-in providers and the instances the settings name,
        configured or not (admins can set models up before the keys exist)."""
