"""The ``anthropic`` provider: the Messages API over pooled httpx clients.

forge speaks the OpenAI role vocabulary; this module translates it to Anthropic's (a top-level
``system``, ``tool_use`` / ``tool_result`` content blocks, ``input_schema`` tools) and back.
The I/O is the shared `Transport`'s; HTTP statuses and in-stream ``error`` events become forge
errors in `error_from` (the one status table, refined by Anthropic's error types). Wire notes:
docs/providers.md.

Thinking: a request that asks for reasoning sends ``thinking`` with a token budget
(`forge_core.backends.reasoning`); ``thinking`` blocks (with their ``signature``) and
``redacted_thinking`` blocks come back as `ReasoningPart`s, streamed as ``thinking_delta``
pieces before the text. Fields of Anthropic's documented Messages API that forge does not carry
yet: adaptive thinking, ``service_tier`` (only through ``extra_body``), ``anthropic-beta``, ``document`` blocks and ``citations_delta``,
``tool_result.is_error``, ``stop_sequence`` (the matched string), the rate-limit headers and
``request-id``. ``top_p``, ``top_k``, ``metadata.user_id`` and ``disable_parallel_tool_use``
are carried. Cache token counts are part of ``Usage.input_tokens`` and kept apart too
(``cached_input_tokens``, ``cache_creation_input_tokens``); images only as base64 data URLs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts, ModelInfo
from forge_core.backends.common import (
    MAX_MESSAGE,
    ToolCallAssembler,
    error_class_for_status,
    fingerprint_of_key,
    read_api_key,
    redact,
    retry_after,
)
from forge_core.backends.content import refuse
from forge_core.backends.http.pool import ClientPool
from forge_core.backends.http.transport import Call, Transport
from forge_core.backends.parameters import OPTIONAL_FIELDS, carry_parameters, merge_extra_body
from forge_core.backends.reasoning import anthropic_reasoning_blocks, anthropic_thinking
from forge_core.errors import (
    AuthenticationFailed,
    BadRequest,
    ForgeTimeout,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from forge_core.types import (
    REASONING_FIELDS,
    AudioPart,
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    FilePart,
    ImagePart,
    Message,
    Provider,
    ReasoningPart,
    RouteTrail,
    TextPart,
    ToolCall,
    Usage,
)

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicClient"]

ANTHROPIC_VERSION = "2023-06-01"
#: The Messages API requires ``max_tokens``; 4096 is the output limit of the smallest current
#: Claude models, so the default is accepted by every model while rarely cutting an answer.
DEFAULT_MAX_TOKENS = 4096
#: Anthropic stop reasons in forge's (OpenAI) finish-reason vocabulary.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}
_MESSAGES_PATH = "/v1/messages"
_MODELS_PATH = "/v1/models"
_HEALTH_CALL = Call("GET", _MODELS_PATH, params={"limit": 1})


#: The sampling parameters the Messages API takes (``user`` becomes ``metadata.user_id``,
#: ``parallel_tool_calls=False`` the tool choice's ``disable_parallel_tool_use``); it has no
#: seed, penalties, logit bias, logprobs or service tier forge could map.
_PARAMETER_FIELDS = {
    "top_p": "top_p",
    "top_k": "top_k",
    "user": "user",
    "parallel_tool_calls": "parallel_tool_calls",
}


def _models_call(after: str | None) -> Call:
    params: dict[str, str | int] = {"limit": 1000}
    if after is not None:
        params["after_id"] = after
    return Call("GET", _MODELS_PATH, params=params)


class AnthropicClient:
    """Chat over ``POST {base_url}/v1/messages``.

    The API key is read from ``api_key_env`` at call time and never stored on the object.
    ``default_max_tokens`` is sent when a request sets no ``max_tokens`` (the API requires one).
    """

    provider = Provider.ANTHROPIC

    def __init__(
        self,
        base_url: str = "https://api.anthropic.com",
        *,
        default_model: str,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        version: str = ANTHROPIC_VERSION,
        timeout_seconds: float = 60.0,
        pool: ClientPool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._default_model = default_model
        self.api_key_env = api_key_env
        self._default_max_tokens = default_max_tokens
        self._version = version
        self._env = env
        self._transport = Transport(
            self.provider,
            self.base_url,
            headers=self._headers,
            status_error=self._error_for,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- protocol ---------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default model."""
        return self._default_model

    def check_ready(self, model: str) -> None:
        """Fail without network when the API key is not set."""
        self._api_key()

    def capabilities(self, model: str) -> Capabilities:
        """Claude models: tools, tool choice, JSON schema output, images, a 200k context."""
        return profiles.ANTHROPIC

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer."""
        response = self._transport.send(self._messages_call(request, model, False), timeouts)
        return self._message_from(response, model)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        call = self._messages_call(request, model, False)
        return self._message_from(await self._transport.asend(call, timeouts), model)

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks, from the named SSE events."""
        call = self._messages_call(request, model, True)
        return self._transport.stream(call, timeouts, _StreamState(self, model))

    def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        call = self._messages_call(request, model, True)
        return self._transport.astream(call, timeouts, _StreamState(self, model))

    # -- discovery --------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        """Every model ``GET /v1/models`` lists, following ``has_more`` pages."""
        models: list[ModelInfo] = []
        after = self._models_page(self._transport.send(_models_call(None)), models)
        while after is not None:
            after = self._models_page(self._transport.send(_models_call(after)), models)
        return models

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        models: list[ModelInfo] = []
        after = self._models_page(await self._transport.asend(_models_call(None)), models)
        while after is not None:
            after = self._models_page(await self._transport.asend(_models_call(after)), models)
        return models

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """A key is set and ``GET /v1/models?limit=1`` answers 200 (never a billed call)."""
        return self._transport.probe(_HEALTH_CALL, timeout) == 200

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        return await self._transport.aprobe(_HEALTH_CALL, timeout) == 200

    # -- request ----------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        return read_api_key(self.provider.value, self.api_key_env, self._env)

    def key_fingerprint(self) -> str | None:
        """A fingerprint of the API key this client sends (rate budgets count per key);
        None when it sends none or the key is missing."""
        try:
            return fingerprint_of_key(self._api_key())
        except ProviderError:
            return None

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self._version, "accept": "application/json"}
        key = self._api_key()
        if key:
            headers["x-api-key"] = key
        return headers

    def _messages_call(self, request: ChatRequest, model: str, stream: bool) -> Call:
        return Call("POST", _MESSAGES_PATH, model, self.body(request, model, stream=stream))

    def body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        """The JSON body of a Messages API request for ``request``."""
        system, messages = _messages_to_wire(request.messages)
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or self._default_max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [_tool_to_wire(tool) for tool in request.tools]
        if request.tool_choice is not None:
            choice = _tool_choice_to_wire(request.tool_choice)
            if choice is not None:
                body["tool_choice"] = choice
        if request.response_format is not None:
            output_format = _output_format(request.response_format)
            if output_format is not None:
                body["output_config"] = {"format": output_format}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        body["stream"] = stream
        fields_set = request.__pydantic_fields_set__
        optional = not OPTIONAL_FIELDS.isdisjoint(fields_set)
        if optional:
            carry_parameters(request, body, _PARAMETER_FIELDS, provider="anthropic")
            user_id = body.pop("user", None)
            if user_id is not None:
                body["metadata"] = {"user_id": user_id}
            if body.pop("parallel_tool_calls", None) is False and request.tools:
                # Anthropic's spelling: a flag on the tool choice (which "none" cannot carry).
                choice = body.setdefault("tool_choice", {"type": "auto"})
                if choice.get("type") != "none":
                    choice["disable_parallel_tool_use"] = True
        if not REASONING_FIELDS.isdisjoint(fields_set):
            anthropic_thinking(request, body, self._default_max_tokens)
        return merge_extra_body(request, body) if optional else body

    # -- response ---------------------------------------------------------------------------

    def _message_from(self, response: httpx.Response, model: str) -> ChatResponse:
        try:
            return _parse_message(response.json(), model)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._malformed(f"malformed message: {redact(str(exc))}", model) from exc

    def _models_page(self, response: httpx.Response, models: list[ModelInfo]) -> str | None:
        """Add one page of the listing to ``models``; the id to continue after, if any."""
        try:
            data = response.json()
            page = [
                ModelInfo(
                    id=entry["id"],
                    provider=self.provider,
                    name=entry.get("display_name"),
                    context_window=entry.get("max_input_tokens")
                    or profiles.ANTHROPIC.context_window,
                    capabilities=profiles.ANTHROPIC,
                    raw=entry,
                )
                for entry in data["data"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._malformed("malformed model list", "") from exc
        models.extend(page)
        return str(data["last_id"]) if data.get("has_more") and data.get("last_id") else None

    def _malformed(self, message: str, model: str) -> MalformedResponse:
        return MalformedResponse(f"anthropic: {message}", provider=self.provider.value, model=model)

    def _error_for(self, response: httpx.Response, model: str) -> ProviderError:
        """The forge error for an HTTP error status."""
        try:
            data = response.json()
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        return error_from(
            response.status_code,
            error,
            model=model,
            retry_after_seconds=retry_after(response),
            fallback_message=response.reason_phrase or "error",
        )


#: Anthropic's error ``type`` refines the one status table (and names in-stream errors).
_ERROR_TYPES: dict[str, type[ProviderError]] = {
    "authentication_error": AuthenticationFailed,
    "permission_error": AuthenticationFailed,
    "billing_error": AuthenticationFailed,
    "not_found_error": ModelNotFound,
    "rate_limit_error": RateLimited,
    "overloaded_error": RateLimited,
    "timeout_error": ForgeTimeout,
    "api_error": ProviderUnavailable,
    "invalid_request_error": BadRequest,
    "request_too_large": BadRequest,
}


def error_from(
    status: int | None,
    error: Mapping[str, Any],
    *,
    model: str,
    retry_after_seconds: float | None = None,
    fallback_message: str = "error",
) -> ProviderError:
    """The forge error for an Anthropic error object (HTTP status, or None in a stream)."""
    kind = str(error.get("type") or "")
    detail = redact(str(error.get("message") or fallback_message))[:MAX_MESSAGE]
    where = f"HTTP {status}" if status is not None else "error in stream"
    message = f"anthropic: {where}: {kind + ': ' if kind else ''}{detail}"
    common: dict[str, Any] = {"provider": "anthropic", "model": model, "status_code": status}
    details = error.get("details")
    if isinstance(details, Mapping) and details.get("error_code") == "enforced_spend_limit_reached":
        # A monthly spend limit does not lift with waiting: fail over, do not retry.
        return AuthenticationFailed(message, **common)
    error_class = _ERROR_TYPES.get(kind)
    if error_class is None:
        error_class = ProviderUnavailable if status is None else error_class_for_status(status)
    if error_class is RateLimited:
        return RateLimited(message, retry_after=retry_after_seconds, **common)
    return error_class(message, **common)


# -- wire translation ---------------------------------------------------------------------


def _messages_to_wire(
    messages: list[Message],
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """forge messages -> (top-level ``system``, Anthropic ``messages``).

    Tool results become ``tool_result`` blocks of a user turn, and consecutive turns of one role
    are merged, because the API requires alternating roles with every result of one assistant
    turn in the next user turn. Each message's parts become blocks in their order.
    """
    system: list[Message] = []
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(message)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if message.role == "assistant":
            # Signed thinking opens the assistant turn, before its text and tool_use blocks.
            blocks = anthropic_reasoning_blocks(message) + blocks
        if message.role == "tool":
            result = blocks[0]["text"] if _plain_text(blocks) else blocks
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": result,
                }
            ]
        for call in message.tool_calls:
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            )
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"] = _as_blocks(wire[-1]["content"]) + blocks
            continue
        content: str | list[dict[str, Any]] = blocks[0]["text"] if _plain_text(blocks) else blocks
        wire.append({"role": role, "content": content})
    return _system_to_wire(system), wire


def _system_to_wire(messages: list[Message]) -> str | list[dict[str, Any]] | None:
    """The system messages' text: one string, or their text parts as blocks when one marks a
    cache breakpoint (``cache_control`` only exists on blocks)."""
    parts = [part for message in messages for part in message.parts_of(TextPart)]
    if any(part.cache_control is not None for part in parts):
        return [_text_block(part) for part in parts if part.text]
    return "\n\n".join(message.text for message in messages if message.text) or None


def _plain_text(blocks: list[dict[str, Any]]) -> bool:
    """``blocks`` is one text block with nothing but its text (it can go as a string)."""
    return len(blocks) == 1 and blocks[0].keys() == {"type", "text"} and blocks[0]["type"] == "text"


def _blocks(message: Message) -> list[dict[str, Any]]:
    """A message's parts as content blocks, in order; an empty text is left out (the API
    refuses empty text blocks)."""
    if not isinstance(message.content, list):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        block: dict[str, Any] | None
        if isinstance(part, TextPart):
            block = _text_block(part) if part.text else None
        elif isinstance(part, ImagePart):
            block = _cached({"type": "image", "source": _source(part)}, part)
        elif isinstance(part, FilePart):
            block = _cached(_document_block(part), part)
        elif isinstance(part, AudioPart):
            raise refuse(part, "anthropic", "Claude takes no audio")
        else:
            block = None  # reasoning: `anthropic_reasoning_blocks` puts it first
        if block is not None:
            blocks.append(block)
    return blocks


def _text_block(part: TextPart) -> dict[str, Any]:
    return _cached({"type": "text", "text": part.text}, part)


def _cached(block: dict[str, Any], part: TextPart | ImagePart | FilePart) -> dict[str, Any]:
    """``block`` with the part's cache breakpoint, when it marks one."""
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _source(part: ImagePart | FilePart) -> dict[str, Any]:
    """A ``base64`` source for data, a ``url`` source for a URL."""
    if part.data is None:
        return {"type": "url", "url": part.url}
    return {"type": "base64", "media_type": part.media_type, "data": part.data}


def _document_block(part: FilePart) -> dict[str, Any]:
    """A ``document`` block: a PDF (base64 or by URL) or plain text (its decoded text); the
    filename is its ``title``."""
    if part.media_type == "text/plain" and part.data is not None:
        try:
            text = base64.b64decode(part.data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise refuse(part, "anthropic", "a text/plain file must be base64 UTF-8") from exc
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": text}
    elif part.media_type == "application/pdf" or (part.url is not None and not part.media_type):
        source = _source(part)
    else:
        raise refuse(part, "anthropic", "documents are PDF (as data or by URL) or plain text")
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        block["title"] = part.filename
    return block


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _tool_to_wire(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-shaped tool (``function.parameters``) as an Anthropic tool (``input_schema``),
    with its ``cache_control`` when it has one."""
    if "input_schema" in tool:
        return dict(tool)
    function = tool.get("function", tool)
    wire: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        wire["description"] = function["description"]
    if "cache_control" in tool:
        wire["cache_control"] = tool["cache_control"]
    return wire


def _tool_choice_to_wire(choice: str | Mapping[str, Any]) -> dict[str, Any] | None:
    if isinstance(choice, str):
        wire_type = {"auto": "auto", "required": "any", "none": "none"}.get(choice)
        return {"type": wire_type} if wire_type else None
    if choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    return dict(choice)


def _output_format(response_format: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = response_format.get("type")
    if kind == "json_schema":
        return {"type": "json_schema", "schema": response_format["json_schema"]["schema"]}
    if kind == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}
    return None


def _finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(stop_reason, stop_reason)


def _usage(data: Mapping[str, Any]) -> Usage:
    """The Messages API's ``usage``: its ``input_tokens`` leave out the cached prompt, so the
    cache reads and writes are added back (`Usage.input_tokens` is the whole prompt) and kept
    apart as well."""
    created = int(data.get("cache_creation_input_tokens") or 0)
    read = int(data.get("cache_read_input_tokens") or 0)
    return Usage(
        input_tokens=int(data.get("input_tokens") or 0) + created + read,
        output_tokens=int(data.get("output_tokens") or 0),
        cached_input_tokens=read,
        cache_creation_input_tokens=created,
    )


def _reasoning_part(block: Mapping[str, Any]) -> ReasoningPart | None:
    """A ``thinking`` block (text and signature) or a ``redacted_thinking`` block (its
    encrypted ``data``) as a `ReasoningPart`; None for any other block."""
    if block["type"] == "thinking":
        return ReasoningPart(
            text=block.get("thinking") or "",
            signature=block.get("signature") or None,
            provider=Provider.ANTHROPIC,
        )
    if block["type"] == "redacted_thinking":
        return ReasoningPart(redacted=block["data"], provider=Provider.ANTHROPIC)
    return None


def _parse_message(data: dict[str, Any], model: str) -> ChatResponse:
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningPart] = []
    for block in data["content"]:
        if block["type"] == "text":
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=block["input"]))
        else:
            part = _reasoning_part(block)
            if part is not None:
                reasoning.append(part)
    return ChatResponse(
        content="".join(texts) if texts else None,
        reasoning_parts=reasoning,
        tool_calls=calls,
        finish_reason=_finish_reason(data.get("stop_reason")),
        usage=_usage(data["usage"]) if isinstance(data.get("usage"), dict) else None,
        provider=Provider.ANTHROPIC,
        model=str(data.get("model") or model),
        route=RouteTrail(),
    )


class _StreamState:
    """Turns the Messages SSE events of one stream into chunks."""

    def __init__(self, client: AnthropicClient, model: str) -> None:
        self._client = client
        self.model = model
        self.done = False
        self._tools = ToolCallAssembler()
        self._input = Usage()
        self._output_tokens = 0
        self._stop_reason: str | None = None
        #: The thinking blocks so far, by content-block index (signatures arrive last).
        self._reasoning: dict[int, ReasoningPart] = {}

    def _chunk(self, **fields: Any) -> ChatChunk:
        return ChatChunk(provider=Provider.ANTHROPIC, model=self.model, **fields)

    def feed(self, event: ServerSentEvent) -> Iterable[ChatChunk]:
        """The chunks ``event`` yields; raises on an in-stream ``error``."""
        chunk = self._event(event)
        return (chunk,) if chunk is not None else ()

    def end(self) -> None:
        raise self._client._malformed("the stream ended before message_stop", self.model)

    def _event(self, event: ServerSentEvent) -> ChatChunk | None:
        name = event.event
        if name == "ping":
            return None
        try:
            data = json.loads(event.data) if event.data else {}
        except ValueError as exc:
            raise self._client._malformed(f"malformed {name} event", self.model) from exc
        if not isinstance(data, dict):
            raise self._client._malformed(f"{name} event is not an object", self.model)
        name = data.get("type", name)
        try:
            return self._handle(name, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise self._client._malformed(f"malformed {name} event", self.model) from exc

    def _handle(self, name: str, data: dict[str, Any]) -> ChatChunk | None:
        if name == "error":
            error = data.get("error")
            raise error_from(None, error if isinstance(error, dict) else {}, model=self.model)
        if name == "message_start":
            message = data["message"]
            self.model = str(message.get("model") or self.model)
            usage = message.get("usage") or {}
            self._input = _usage({**usage, "output_tokens": 0})
            self._output_tokens = int(usage.get("output_tokens") or 0)
            return None
        if name == "content_block_start":
            block = data["content_block"]
            if block["type"] == "tool_use":
                delta = self._tools.add(data["index"], id=block["id"], name=block["name"])
                return self._chunk(tool_call_deltas=[delta])
            if block["type"] == "text" and block.get("text"):
                return self._chunk(content=block["text"])
            part = _reasoning_part(block)
            if part is not None:
                self._reasoning[data["index"]] = part
                return self._chunk(reasoning=part.text) if part.text else None
            return None
        if name == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                return self._chunk(content=delta["text"]) if delta["text"] else None
            if delta["type"] == "thinking_delta":
                part = self._reasoning[data["index"]]
                part.text += delta["thinking"]
                return self._chunk(reasoning=delta["thinking"]) if delta["thinking"] else None
            if delta["type"] == "signature_delta":
                self._reasoning[data["index"]].signature = delta["signature"]
                return None
            if delta["type"] == "input_json_delta":
                if not delta["partial_json"]:
                    return None
                fragment = self._tools.add(data["index"], arguments=delta["partial_json"])
                return self._chunk(tool_call_deltas=[fragment])
            return None
        if name == "message_delta":
            self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
            usage = data.get("usage") or {}
            # output_tokens here is the cumulative final count, not an increment.
            if usage.get("output_tokens") is not None:
                self._output_tokens = int(usage["output_tokens"])
            if usage.get("input_tokens") is not None:
                self._input = _usage({**usage, "output_tokens": 0})
            return None
        if name == "message_stop":
            self.done = True
            return self._chunk(
                finish_reason=_finish_reason(self._stop_reason) or "stop",
                usage=self._input.model_copy(update={"output_tokens": self._output_tokens}),
                tool_calls=self._tools.calls(),
                reasoning_parts=[self._reasoning[index] for index in sorted(self._reasoning)],
            )
        # content_block_stop carries nothing new; unknown events are ignored by contract.
        return None
