"""The provider-neutral request, response and route types every part of forge speaks."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CALL_PARAMETERS",
    "LOCAL_PROVIDERS",
    "REASONING_FIELDS",
    "SAMPLING_PARAMETERS",
    "Attempt",
    "AudioPart",
    "Capabilities",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "Drop",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "FilePart",
    "ImagePart",
    "Message",
    "ModelId",
    "ModelRequirements",
    "Provider",
    "ReasoningEffort",
    "ReasoningPart",
    "RouteTrail",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "json_schema_format",
]


class Provider(enum.StrEnum):
    """The providers forge can route to."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENROUTER = "openrouter"
    OLLAMA = "ollama"
    HUGGINGFACE = "huggingface"

    @property
    def is_local(self) -> bool:
        """True for providers that run on this machine (never a cloud escalation)."""
        return self in LOCAL_PROVIDERS

    def __str__(self) -> str:
        return self.value


LOCAL_PROVIDERS = frozenset({Provider.OLLAMA, Provider.HUGGINGFACE})


class ModelId(BaseModel):
    """A model address: ``provider:model`` (``ollama:llama3.1:8b``) or a bare model name.

    Only the text before the first ``:`` is checked against the provider names, so Ollama tags
    (``llama3.1:8b``) stay part of the model name.
    """

    model_config = ConfigDict(frozen=True)

    provider: Provider | None
    model: str | None

    @classmethod
    def parse(cls, text: str) -> ModelId:
        """Split ``provider:model``; a text with no known provider prefix is a bare model."""
        head, sep, rest = text.partition(":")
        try:
            provider = Provider(head.strip().lower())
        except ValueError:
            return cls(provider=None, model=text)
        return (
            cls(provider=provider, model=rest or None)
            if sep
            else cls(provider=provider, model=None)
        )

    def __str__(self) -> str:
        if self.provider is None:
            return self.model or ""
        return f"{self.provider.value}:{self.model}" if self.model else self.provider.value


class ToolCall(BaseModel):
    """A complete tool call requested by the model; ``arguments`` is already parsed JSON."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCallDelta(BaseModel):
    """A fragment of a streamed tool call; fragments with the same ``index`` belong together.

    What each field means in the chunks `Forge.stream` yields:

    - ``index``: the call's position in this answer (0, 1, ...). It is the only grouping key:
      two calls with the same name and arguments have two indices and stay two calls.
    - ``id``: the call's id, the same on every fragment of one index (forge mints one when
      the provider sends none).
    - ``name``: the tool's name, on every fragment once known; None only before the provider
      named the call.
    - ``arguments``: the next piece of the arguments' JSON text; the pieces of one index,
      concatenated in order, are the whole JSON object (a piece may be ``""``).

    The providers send these differently, and each client normalises its wire fragments into
    this shape: OpenAI (and OpenRouter) send ``id`` and ``name`` on a call's first fragment
    only, then ``index`` with argument pieces; llama-cpp-python's server repeats ``name`` on
    every fragment; Anthropic opens a ``tool_use`` content block with ``id`` and ``name`` and
    streams the arguments as ``input_json_delta`` pieces keyed by content-block index (which
    counts text blocks too, so forge renumbers it); Ollama and the in-process models send each
    call whole in one fragment. The finish chunk's ``ChatChunk.tool_calls``
    holds the calls assembled; `ToolCallAccumulator` joins fragments for "the calls so far".
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class TextPart(BaseModel):
    """Text in a message's content.

    ``cache_control`` marks a prompt-cache breakpoint after this part (Anthropic's
    ``{"type": "ephemeral"}``); providers without explicit breakpoints leave it out.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"] = "text"
    text: str
    cache_control: dict[str, Any] | None = None


class _MediaPart(BaseModel):
    """A part whose bytes are given inline (base64 ``data`` with its ``media_type``) or by
    ``url`` (http(s), or a ``data:`` URL, which is split into the two on validation)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    cache_control: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.url is not None and self.url.startswith("data:"):
            header, _, payload = self.url.partition(",")
            media_type, _, encoding = header[len("data:") :].partition(";")
            if encoding != "base64" or not payload:
                raise ValueError("a data: URL part must be base64 (data:<type>;base64,<data>)")
            self.url, self.data, self.media_type = None, payload, media_type or self.media_type
        if (self.url is None) == (self.data is None):
            raise ValueError(f"a {self._kind()} part takes exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise ValueError(f"a {self._kind()} part given as data needs its media_type")
        return self

    def _kind(self) -> str:
        return str(type(self).model_fields["type"].default)

    @property
    def data_url(self) -> str:
        """The part as a URL: ``url`` itself, or ``data:<media_type>;base64,<data>``."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type};base64,{self.data}"


class ImagePart(_MediaPart):
    """An image: by URL or as base64 data with its media type (``image/png``, ...).

    ``detail`` is OpenAI's resolution hint (``auto``, ``low``, ``high``), left out elsewhere.
    Only a deployment that can see takes it (`Capabilities.vision`).
    """

    type: Literal["image"] = "image"
    detail: Literal["auto", "low", "high"] | None = None


class AudioPart(_MediaPart):
    """Audio, as base64 data with its media type (``audio/wav``, ``audio/mpeg``, ...) or by
    URL; only a deployment that hears takes it (`Capabilities.audio`)."""

    type: Literal["audio"] = "audio"


class FilePart(_MediaPart):
    """A document (``application/pdf``, ``text/plain``, ...) by URL or as base64 data, with an
    optional ``filename``; only a deployment that reads files takes it (`Capabilities.files`)."""

    type: Literal["file"] = "file"
    filename: str | None = None


class ReasoningPart(BaseModel):
    """The model's reasoning in an assistant message, as the provider gave it.

    ``signature`` is the provider's opaque signature of ``text`` and ``redacted`` its opaque
    encrypted reasoning (Anthropic's ``thinking`` and ``redacted_thinking`` blocks); only
    ``provider``, the one that produced them, takes them back (unnamed, it is Anthropic, the
    one provider that signs thinking). A provider that neither needs nor accepts reasoning in
    a conversation's history is sent none.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["reasoning"] = "reasoning"
    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    provider: Provider | None = None

    @model_validator(mode="after")
    def _signed_by_anthropic(self) -> Self:
        if self.provider is None and (self.signature or self.redacted):
            self.provider = Provider.ANTHROPIC
        return self


_PartT = TypeVar("_PartT", bound=BaseModel)

#: One part of a message's content; ``type`` tells which.
ContentPart = Annotated[
    TextPart | ImagePart | AudioPart | FilePart | ReasoningPart, Field(discriminator="type")
]


class Message(BaseModel):
    """One chat message in the OpenAI role vocabulary.

    ``content`` is text, or the message's parts in order: text, images, audio and files (on
    any message a provider takes them on), and reasoning (on assistant messages). `text` is
    the text either way; `parts` the parts either way.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str | None:
        """The message's text: the string content, or its text parts joined; None when it
        has no text."""
        if self.content is None or isinstance(self.content, str):
            return self.content
        texts = [part.text for part in self.content if isinstance(part, TextPart)]
        return "".join(texts) if texts else None

    @property
    def parts(self) -> list[ContentPart]:
        """The content as parts: string content is one `TextPart` (none when empty)."""
        if isinstance(self.content, list):
            return self.content
        return [TextPart(text=self.content)] if self.content else []

    def parts_of(self, kind: type[_PartT]) -> list[_PartT]:
        """The parts of one kind, in order (``message.parts_of(ImagePart)``)."""
        return [part for part in self.parts if isinstance(part, kind)]


#: How hard a model should think: forge's neutral levels (docs/behaviour.md, Reasoning), each
#: provider's own spelling (docs/providers.md).
ReasoningEffort = Literal["low", "medium", "high"]


class Usage(BaseModel):
    """Token counts of one call.

    ``input_tokens`` counts the whole prompt, cached parts included; ``cached_input_tokens``
    (read from the provider's prompt cache) and ``cache_creation_input_tokens`` (written to it)
    are parts of it. ``reasoning_tokens`` (thinking the provider bills as output but may not
    show) are part of ``output_tokens``. Each detail is 0 when the provider reports none.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class ChatRequest(BaseModel):
    """A provider-neutral chat request.

    ``model`` is ``provider:model`` (pins the first candidate), a bare model name, or ``None``
    (the configured preferences decide). ``tools`` and ``response_format`` use the OpenAI
    chat-completions shapes; each provider client translates them.
    """

    model_config = ConfigDict(extra="forbid")

    messages: list[Message]
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    local_only: bool | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    #: Token id -> bias added to its logit; ids as ints (as ChatOpenAI takes them) or strings.
    logit_bias: dict[int | str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    service_tier: str | None = None
    #: Multiplies down the logits of tokens already in the context (Ollama's and llama.cpp's
    #: ``repeat_penalty``; vLLM and OpenRouter call it ``repetition_penalty``).
    repeat_penalty: float | None = None
    num_ctx: int | None = Field(
        default=None,
        gt=0,
        description="The context Ollama loads the model with for this request (Ollama only; "
        "wins over the size forge picks for the prompt).",
    )
    keep_alive: str | int | None = Field(
        default=None,
        description="How long Ollama keeps the model loaded after this request ('10m', "
        "seconds, -1 forever, 0 unload; Ollama only).",
    )
    extra_body: dict[str, Any] | None = Field(
        default=None,
        description="Raw fields merged last into the provider's request body, as they are "
        "(for a parameter forge does not model); sent to whichever provider serves.",
    )
    prompt_cache_key: str | None = Field(
        default=None,
        description="Names the conversation: among balanced deployments its requests go to "
        "the same one in every process (rendezvous hashing), where the prompt is cached; "
        "sent to OpenAI as prompt_cache_key.",
    )
    reasoning: bool | None = Field(
        default=None,
        description="True asks the model to think before answering (only reasoning-capable "
        "candidates serve it); False asks it not to, where the provider can turn it off.",
    )
    reasoning_effort: ReasoningEffort | None = Field(
        default=None,
        description="How hard to think (low, medium, high); implies reasoning. OpenAI-"
        "compatible reasoning_effort, Ollama think levels, an Anthropic thinking budget.",
    )
    reasoning_budget: int | None = Field(
        default=None,
        ge=1,
        description="At most this many thinking tokens; implies reasoning. Anthropic's "
        "thinking budget_tokens; an effort level where the provider takes levels only.",
    )

    @property
    def wants_reasoning(self) -> bool:
        """Whether this request asks for thinking (``reasoning`` True, or an effort or a
        budget set)."""
        if REASONING_FIELDS.isdisjoint(self.__pydantic_fields_set__):
            return False
        return bool(self.reasoning) or (
            self.reasoning is not False
            and (self.reasoning_effort is not None or self.reasoning_budget is not None)
        )

    def sampling_parameters(self) -> dict[str, Any]:
        """The `SAMPLING_PARAMETERS` set on this request (not None), by name; empty, and
        built from nothing, when none was set (the common case)."""
        # The private set rather than the `model_fields_set` property: this runs per request.
        fields_set = self.__pydantic_fields_set__
        if SAMPLING_PARAMETERS.isdisjoint(fields_set):
            return {}
        values = {name: getattr(self, name) for name in sorted(SAMPLING_PARAMETERS & fields_set)}
        return {name: value for name, value in values.items() if value is not None}


#: The optional generation parameters each provider client translates to its own wire fields
#: (or leaves out with a debug line when its provider has no such field): docs/providers.md.
#: Ollama's runtime options ``num_ctx`` and ``keep_alive`` are among them: they travel the same
#: way, and every other provider leaves them out.
SAMPLING_PARAMETERS: frozenset[str] = frozenset(
    {
        "repeat_penalty",
        "num_ctx",
        "keep_alive",
        "top_p",
        "top_k",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "user",
        "service_tier",
    }
)

#: The request fields that ask for (or turn off) thinking; each provider client translates them
#: (`forge_core.backends.reasoning`, docs/providers.md).
REASONING_FIELDS: frozenset[str] = frozenset({"reasoning", "reasoning_effort", "reasoning_budget"})

#: The `ChatRequest` fields a caller may set per call (everything but the messages); the
#: framework packages accept exactly these as keyword arguments.
CALL_PARAMETERS: frozenset[str] = frozenset(ChatRequest.model_fields) - {"messages"}


def json_schema_format(
    name: str,
    schema: Mapping[str, Any],
    *,
    description: str | None = None,
    strict: bool | None = None,
) -> dict[str, Any]:
    """The ``response_format`` (OpenAI's shape, which every provider client translates)
    asking for JSON that validates against ``schema``; ``name`` names the schema."""
    json_schema: dict[str, Any] = {"name": name, "schema": dict(schema)}
    if description:
        json_schema["description"] = description
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}


class EmbeddingRequest(BaseModel):
    """A provider-neutral request for one vector per text.

    ``model`` pins the first candidate as for chat (``provider:model`` or a bare name); the
    other candidates embed with ``models[provider]``, else their backend's default embedding
    model. ``fallback`` False keeps only the first candidate (None: the configured setting).
    """

    model_config = ConfigDict(extra="forbid")

    input: list[str]
    model: str | None = None
    models: dict[Provider, str] = Field(default_factory=dict)
    local_only: bool | None = None
    fallback: bool | None = None


class Attempt(BaseModel):
    """One call to one candidate, successful or not."""

    provider: Provider
    model: str
    #: The deployment called (its name; the provider kind's own name for a default one).
    deployment: str | None = None
    ok: bool
    error_kind: str | None = None
    message: str | None = None
    elapsed_ms: float
    #: Why balancing placed this deployment where it was (``routing.affinity``): ``prefix:N``
    #: (it served the first N messages last), ``key`` (the conversation key's deployment),
    #: ``spread`` (a new conversation, to the emptiest of the least busy) or ``load`` (the
    #: load order); None when the entry was not balanced or affinity is off.
    affinity: str | None = None


class Drop(BaseModel):
    """A candidate that was not called, and why."""

    provider: Provider
    model: str | None
    deployment: str | None = None
    reason: str


class RouteTrail(BaseModel):
    """What the router did for one request: who served it, what was tried, how long it took."""

    provider: Provider | None = None
    model: str | None = None
    #: The deployment that served (an Ollama host or endpoint name, else the provider's).
    deployment: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    drops: list[Drop] = Field(default_factory=list)
    ttft_ms: float | None = None
    total_ms: float | None = None
    cost_usd: float | None = Field(
        default=None,
        description="What the answer cost in US dollars, from the usage and the price table "
        "(the config's ``pricing``); 0 for a local model, None when the model has no price "
        "or the provider reported no usage.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the provider's answer showed that the caller should know, one "
        "sentence each (Ollama cut the prompt to its context: the numbers); a backend puts "
        "them on the route of the answer (or stream chunk) it returns, the router keeps them.",
    )

    def describe(self) -> str:
        """Every attempt and drop, one per line, for error messages and the CLI."""
        lines = []
        for attempt in self.attempts:
            outcome = "ok" if attempt.ok else f"{attempt.error_kind}: {attempt.message}"
            lines.append(
                f"  {attempt.deployment or attempt.provider.value}:{attempt.model} -> {outcome} "
                f"({attempt.elapsed_ms:.0f} ms)"
            )
        for drop in self.drops:
            name = drop.deployment or drop.provider.value
            target = f"{name}:{drop.model}" if drop.model else name
            lines.append(f"  {target} -> skipped: {drop.reason}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


class ChatResponse(BaseModel):
    """A complete answer and the route that produced it.

    ``reasoning`` is the model's thinking where the provider returns it apart from the answer
    (OpenAI-compatible servers' ``reasoning_content`` or ``reasoning``, Ollama's
    ``message.thinking``, Anthropic's ``thinking`` blocks), joined, else None.
    ``reasoning_parts`` is the same thinking as the provider gave it, one `ReasoningPart` per
    block, with Anthropic's signatures and redacted blocks (which have no text): what a later
    turn sends back (`to_message`). Give either one; the other follows from it.
    """

    content: str | None
    reasoning: str | None = None
    reasoning_parts: list[ReasoningPart] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = Field(
        default=None,
        description="Per-token log probabilities when asked for (``logprobs``) and returned, "
        "in OpenAI's shape: ``{token, logprob, bytes, top_logprobs}`` per token.",
    )
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    provider: Provider
    model: str
    route: RouteTrail

    def to_message(self) -> Message:
        """This answer as the assistant `Message` to append to the conversation: its
        reasoning parts (which each provider sends back as it requires: Anthropic its signed
        thinking), its text and its tool calls."""
        if not self.reasoning_parts:
            return Message(role="assistant", content=self.content, tool_calls=self.tool_calls)
        parts: list[ContentPart] = list(self.reasoning_parts)
        if self.content:
            parts.append(TextPart(text=self.content))
        return Message(role="assistant", content=parts, tool_calls=self.tool_calls)

    @model_validator(mode="after")
    def _reasoning_both_ways(self) -> ChatResponse:
        if self.reasoning_parts and self.reasoning is None:
            self.reasoning = "".join(part.text for part in self.reasoning_parts) or None
        elif self.reasoning and not self.reasoning_parts:
            self.reasoning_parts = [ReasoningPart(text=self.reasoning)]
        return self


class ChatChunk(BaseModel):
    """One piece of a streamed answer.

    ``usage`` appears on one chunk at most; ``route`` is set on the last chunk only, which also
    carries ``finish_reason``. ``tool_calls`` holds the complete, assembled tool calls of the
    stream (stable ids, parsed arguments) on the chunk that carries ``finish_reason``; the
    ``tool_call_deltas`` before it are the same calls in fragments. ``reasoning`` is the next
    piece of the model's thinking, where the provider streams it apart (it comes before the
    text); the pieces joined are `ChatResponse.reasoning`. ``reasoning_parts``, on the chunk
    that carries ``finish_reason``, holds the thinking whole as `ChatResponse.reasoning_parts`
    does (signatures and redacted blocks included), as ``tool_calls`` holds the calls: what a
    stream's consumer keeps to send back. ``logprobs`` are the log probabilities of this
    chunk's tokens, when asked for and returned.
    """

    content: str = ""
    reasoning: str = ""
    reasoning_parts: list[ReasoningPart] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None
    tool_call_deltas: list[ToolCallDelta] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    provider: Provider
    model: str
    route: RouteTrail | None = None


class Capabilities(BaseModel):
    """What one provider can do with one model; the router skips candidates that lack a need.

    ``context_window`` is in tokens, None when unknown (unknown never causes a skip).
    ``tools_emulated``: ``tools`` holds because forge emulates tool calls through
    schema-constrained output where the server has none of its own (docs/providers.md).
    ``vision``, ``audio``, ``files``: it takes image, audio and file parts given as data;
    ``image_urls``, ``file_urls``: it also takes them by http(s) URL (no provider forge
    speaks to takes audio by URL).
    """

    tools: bool = False
    tools_emulated: bool = False
    tool_choice: bool = False
    structured_output: bool = False
    json_mode: bool = False
    vision: bool = False
    image_urls: bool = False
    audio: bool = False
    files: bool = False
    reasoning: bool = False
    file_urls: bool = False
    streaming: bool = True
    embeddings: bool = False
    context_window: int | None = None


class ModelRequirements(BaseModel):
    """What a request needs from the model that serves it."""

    tools: bool = False
    structured_output: bool = False
    json_mode: bool = False
    vision: bool = False
    image_urls: bool = False
    audio: bool = False
    files: bool = False
    reasoning: bool = False
    file_urls: bool = False
    embeddings: bool = False
    min_context_tokens: int = 0

    @classmethod
    def of(cls, request: ChatRequest) -> ModelRequirements:
        """The needs of ``request``; the prompt size is estimated at 4 characters a token."""
        response_type = (request.response_format or {}).get("type")
        prompt_chars = sum(len(message.text or "") for message in request.messages)
        # Each part's kind, and "<kind>_url" for a media part given by URL.
        kinds = {
            kind
            for message in request.messages
            if isinstance(message.content, list)
            for part in message.content
            for kind in (
                (part.type, f"{part.type}_url")
                if isinstance(part, _MediaPart) and part.url is not None
                else (part.type,)
            )
        }
        return cls(
            tools=bool(request.tools),
            structured_output=response_type == "json_schema",
            json_mode=response_type == "json_object",
            vision="image" in kinds,
            image_urls="image_url" in kinds,
            audio="audio" in kinds,
            files="file" in kinds,
            reasoning=request.wants_reasoning,
            file_urls="file_url" in kinds,
            min_context_tokens=prompt_chars // 4 + (request.max_tokens or 0),
        )

    def unmet(self, capabilities: Capabilities) -> list[str]:
        """The needs ``capabilities`` does not cover, as short phrases (empty: all met)."""
        missing = []
        if self.tools and not capabilities.tools:
            missing.append("tool calling")
        if self.structured_output and not capabilities.structured_output:
            missing.append("JSON-schema output")
        if self.json_mode and not (capabilities.json_mode or capabilities.structured_output):
            missing.append("JSON mode")
        if self.vision and not capabilities.vision:
            missing.append("images")
        elif self.image_urls and not capabilities.image_urls:
            missing.append("images by URL")
        if self.audio and not capabilities.audio:
            missing.append("audio")
        if self.files and not capabilities.files:
            missing.append("files")
        elif self.file_urls and not capabilities.file_urls:
            missing.append("files by URL")
        if self.reasoning and not capabilities.reasoning:
            missing.append("reasoning")
        if self.embeddings and not capabilities.embeddings:
            missing.append("embeddings")
        window = capabilities.context_window
        if window is not None and self.min_context_tokens > window:
            missing.append(f"a {self.min_context_tokens}-token context (has {window})")
        return missing


class EmbeddingResponse(BaseModel):
    """Vectors for a batch of texts (same order), who made them and the route taken."""

    vectors: list[list[float]]
    provider: Provider
    model: str
    input_tokens: int | None = None
    route: RouteTrail = Field(default_factory=RouteTrail)

    @property
    def dimensions(self) -> int:
        """Length of each vector (0 for an empty batch)."""
        return len(self.vectors[0]) if self.vectors else 0
