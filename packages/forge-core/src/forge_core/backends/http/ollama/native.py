"""The ``ollama`` provider: two chat clients over one `OllamaAdmin`.

`OllamaClient` chats through Ollama's native ``/api/chat`` (NDJSON streaming, and the options
only the native API has: ``num_ctx``, ``keep_alive``, ``think``) and embeds through
``/api/embed``; `OllamaOpenAIClient` chats through the OpenAI-compatible ``/v1`` surface
(``api: openai``, the default, which other servers with that surface also answer) and embeds
through ``/v1/embeddings``. Both list, probe, show, preload and pull through the same
`OllamaAdmin` (``/api/tags``, ``/api/version``, ``/api/show``, ``/api/ps``, ``/api/generate``,
``/api/pull``), whose ``/api/show`` answers feed both clients' capabilities. Error bodies are
``{"error": "<message>"}``; statuses map through the one table, NDJSON error lines through
`_stream_failure`. Wire notes: docs/providers.md.

Fields of Ollama's documented API that forge does not carry yet: streamed ``thinking`` text (``think``
is sent, the thoughts are dropped), ``logprobs``, ``seed``/``top_k``/``top_p`` options,
``/api/generate`` as a chat path, ``/api/create``/``copy``/``delete``/``push``, embedding
``truncate``/``dimensions``, and the timing stats of the final chunk. ``tool_choice`` does not
exist in Ollama: it is ignored, except ``"none"``, which leaves the tools out of a native request.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, Field

from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts, ModelInfo
from forge_core.backends.common import (
    MAX_MESSAGE,
    ToolCallAssembler,
    embedding_vector,
    new_tool_call_id,
    parse_data_url,
    redact,
    status_error,
)
from forge_core.backends.http.openai.client import OpenAICompatibleClient, checked_count
from forge_core.backends.http.pool import ClientPool
from forge_core.backends.http.transport import Call, Transport
from forge_core.errors import (
    CapabilityMismatch,
    MalformedResponse,
    ModelNotFound,
    OllamaUnavailable,
    ProviderError,
    ProviderUnavailable,
)
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    Message,
    Provider,
    RouteTrail,
    ToolCall,
    Usage,
)

__all__ = [
    "DEFAULT_OLLAMA_EMBEDDING_MODEL",
    "OllamaAdmin",
    "OllamaClient",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaModelInfo",
    "OllamaOpenAIClient",
    "OllamaRunningModel",
    "PullProgress",
    "ollama_admin",
]

#: Ollama's /v1 surface: tools and JSON output for models that support them; no tool_choice.
OLLAMA_CAPABILITIES = Capabilities(
    tools=True, tool_choice=False, structured_output=True, json_mode=True, embeddings=True
)
#: The model Ollama embeds with when the request names none.
DEFAULT_OLLAMA_EMBEDDING_MODEL = "nomic-embed-text"
_VERSION = Call("GET", "/api/version")
_V1_MODELS = Call("GET", "/v1/models")
_TAGS = Call("GET", "/api/tags")
_PS = Call("GET", "/api/ps")


class OllamaModelDetails(BaseModel):
    """``details`` of a pulled model (``/api/tags``, ``/api/show``, ``/api/ps``)."""

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class OllamaModel(ModelInfo):
    """A pulled model, as ``/api/tags`` lists it.

    ``name`` is the model's full tag (``llama3.2:latest``), also its ``id``.
    """

    name: str
    size: int = 0
    modified_at: str = ""
    digest: str = ""
    details: OllamaModelDetails = Field(default_factory=OllamaModelDetails)


class OllamaModelInfo(BaseModel):
    """What ``/api/show`` says about one model."""

    name: str
    context_length: int | None = None
    capabilities: list[str] = Field(default_factory=list)
    details: OllamaModelDetails = Field(default_factory=OllamaModelDetails)


class OllamaRunningModel(BaseModel):
    """A model loaded in memory right now (``/api/ps``)."""

    name: str
    size: int = 0
    size_vram: int = 0
    digest: str = ""
    expires_at: str | None = None
    context_length: int | None = None
    details: OllamaModelDetails = Field(default_factory=OllamaModelDetails)


class PullProgress(BaseModel):
    """One ``/api/pull`` progress line; ``total``/``completed`` are bytes of one layer."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class OllamaAdmin:
    """What an Ollama server says about its models, and what it does with them: the pulled
    models, version and health, ``show``, the loaded models, preloading and pulling.

    Shared by `OllamaClient` and `OllamaOpenAIClient` (their ``admin``); ``v1_health`` makes a
    server without the native API healthy when its ``/v1/models`` answers (forge is often
    pointed at other servers with that surface).

    Example:
        ```python
        admin = OllamaAdmin("http://localhost:11434")
        if admin.health_check():
            print([model.name for model in admin.pulled_models()])
        ```
    """

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        keep_alive: str | int | None = None,
        v1_health: bool = False,
        pool: ClientPool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._health_check_timeout = health_check_timeout
        self._keep_alive = keep_alive
        self._v1_health = v1_health
        #: What the last ``/api/show`` of each model said it can do.
        self.model_capabilities: dict[str, Capabilities] = {}
        #: The names the last ``/api/tags`` listed, and when (``time.monotonic``).
        self.pulled: tuple[float, frozenset[str]] | None = None
        self.transport = Transport(
            Provider.OLLAMA,
            self.base_url,
            headers=_headers,
            status_error=_status_error,
            unavailable=OllamaUnavailable,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def pulled_models(self) -> list[OllamaModel]:
        """The pulled models (``GET /api/tags``); remembered in `pulled`."""
        return self._remember(_tags_from(self.transport.send(_TAGS)))

    async def apulled_models(self) -> list[OllamaModel]:
        """Async `pulled_models`."""
        return self._remember(_tags_from(await self.transport.asend(_TAGS)))

    def _remember(self, models: list[OllamaModel]) -> list[OllamaModel]:
        self.pulled = (time.monotonic(), frozenset(model.id for model in models))
        return models

    def version(self, timeout: float | None = None) -> str:
        """The server's version (``GET /api/version``)."""
        response = self.transport.send(_VERSION, timeout or self._health_check_timeout)
        return str(_json(response, "").get("version"))

    @property
    def health_check_timeout(self) -> float:
        """Seconds a health probe (and the listing of loaded models for routing) may take."""
        return self._health_check_timeout

    def health_check(self, timeout: float | None = None) -> bool:
        """True when ``/api/version`` (or, with ``v1_health``, ``/v1/models`` on a server
        without the native API) answers 200 within the health-check timeout. Never raises."""
        seconds = timeout or self._health_check_timeout
        status = self.transport.probe(_VERSION, seconds)
        if status == 404 and self._v1_health:
            status = self.transport.probe(_V1_MODELS, seconds)
        return status == 200

    async def ahealth_check(self, timeout: float | None = None) -> bool:
        """Async `health_check`."""
        seconds = timeout or self._health_check_timeout
        status = await self.transport.aprobe(_VERSION, seconds)
        if status == 404 and self._v1_health:
            status = await self.transport.aprobe(_V1_MODELS, seconds)
        return status == 200

    def show(self, model: str) -> OllamaModelInfo:
        """Context length and capabilities of ``model`` (``POST /api/show``); 404 ->
        `ModelNotFound`. The answer feeds the clients' `capabilities`."""
        response = self.transport.send(Call("POST", "/api/show", model, {"model": model}))
        data = _json(response, model)
        try:
            model_info = data.get("model_info") or {}
            architecture = model_info.get("general.architecture")
            context = model_info.get(f"{architecture}.context_length") if architecture else None
            info = OllamaModelInfo(
                name=model,
                context_length=int(context) if context else None,
                capabilities=list(data.get("capabilities") or []),
                details=OllamaModelDetails.model_validate(data.get("details") or {}),
            )
        except (ValueError, TypeError) as exc:
            raise _malformed("malformed /api/show answer", model) from exc
        self.model_capabilities[model] = _capabilities_from_show(info)
        return info

    def running_models(self, timeout: float | None = None) -> list[OllamaRunningModel]:
        """The models loaded in memory now (``GET /api/ps``), within ``timeout`` seconds
        (default: the client's timeout)."""
        data = _json(self.transport.send(_PS, timeout), "")
        try:
            return [OllamaRunningModel.model_validate(entry) for entry in data.get("models") or []]
        except ValueError as exc:
            raise _malformed("malformed /api/ps answer", "") from exc

    def preload(self, model: str, keep_alive: str | int | None = None) -> None:
        """Load ``model`` into memory without generating (an empty ``/api/generate``) and keep
        it for ``keep_alive`` (default: the configured one, else the server's)."""
        body: dict[str, Any] = {"model": model}
        keep = keep_alive if keep_alive is not None else self._keep_alive
        if keep is not None:
            body["keep_alive"] = keep
        data = _json(self.transport.send(Call("POST", "/api/generate", model, body)), model)
        if not data.get("done"):
            raise _malformed("preload did not finish", model)

    def pull(self, model: str, progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull ``model``, passing every ``/api/pull`` progress line to ``progress``.

        An error line in the stream (the status stays 200) raises: `ModelNotFound` when the
        registry has no such model, else `ProviderUnavailable`.
        """
        call = Call("POST", "/api/pull", model, {"model": model, "stream": True}, events="ndjson")
        for data in self.transport.items(call):
            if "error" in data:
                raise _stream_failure(str(data["error"]), model)
            try:
                line = PullProgress.model_validate(data)
            except ValueError as exc:
                raise _malformed("malformed /api/pull line", model) from exc
            if progress is not None:
                progress(line)


class _AdminBacked:
    """Capabilities, model order, listing and health of an Ollama chat client, from its
    `OllamaAdmin` and the configured ``preferred_models``."""

    admin: OllamaAdmin
    _default_model: str
    #: ``preferred_models``, best first; empty: the default model alone.
    preferred_models: tuple[str, ...] = ()
    #: ``auto_discovery``: filter ``preferred_models`` by the last listing of pulled models.
    auto_discovery: bool = True
    #: How long a listing of pulled models is trusted for the order.
    discovery_ttl_seconds: float = 300.0

    def model_order(self) -> tuple[str, ...]:
        """``preferred_models`` in order, less those the last fresh ``/api/tags`` (with
        ``auto_discovery``) did not list; all of them when there is no fresh listing, so a
        missing one costs a 404 (the endpoint is up: the next model is tried, and the planner
        remembers it). No network call."""
        order = self.preferred_models or (self._default_model,)
        pulled = self.admin.pulled
        if not self.auto_discovery or pulled is None:
            return order
        listed_at, names = pulled
        if time.monotonic() - listed_at > self.discovery_ttl_seconds:
            return order
        return tuple(model for model in order if _is_pulled(model, names))

    def capabilities(self, model: str) -> Capabilities:
        """From the last ``/api/show`` of ``model`` when there was one, else the defaults."""
        return self.admin.model_capabilities.get(model, OLLAMA_CAPABILITIES)

    def list_models(self) -> list[ModelInfo]:
        """The pulled models (``GET /api/tags``), as `OllamaModel`."""
        return list(self.admin.pulled_models())

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        return list(await self.admin.apulled_models())

    def loaded_models(self, timeout: float | None = None) -> list[str]:
        """The models the server has loaded now (``GET /api/ps``)."""
        bound = timeout if timeout is not None else self.admin.health_check_timeout
        return [model.name for model in self.admin.running_models(bound)]

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """`OllamaAdmin.health_check`."""
        return self.admin.health_check(timeout)

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        return await self.admin.ahealth_check(timeout)


class OllamaClient(_AdminBacked):
    """Chat through Ollama's native ``/api/chat`` and embeddings through ``/api/embed``.

    Example:
        ```python
        ollama = OllamaClient("http://localhost:11434", default_model="llama3.2")
        if ollama.health():
            print([model.id for model in ollama.list_models()])
        ```
    """

    provider = Provider.OLLAMA

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        default_model: str,
        default_embedding_model: str = DEFAULT_OLLAMA_EMBEDDING_MODEL,
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        num_ctx: int | None = None,
        keep_alive: str | int | None = None,
        think: bool | str | None = None,
        preferred_models: Sequence[str] = (),
        auto_discovery: bool = True,
        pool: ClientPool | None = None,
    ) -> None:
        self.preferred_models = tuple(preferred_models)
        self.auto_discovery = auto_discovery
        self.admin = OllamaAdmin(
            base_url,
            timeout_seconds=timeout_seconds,
            health_check_timeout=health_check_timeout,
            keep_alive=keep_alive,
            pool=pool,
        )
        self.base_url = self.admin.base_url
        self._default_model = default_model
        self._default_embedding_model = default_embedding_model
        self._num_ctx = num_ctx
        self._keep_alive = keep_alive
        self._think = think

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- protocol ---------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default model."""
        return self._default_model

    def default_embedding_model(self) -> str:
        """The model that embeds when the request names none."""
        return self._default_embedding_model

    def check_ready(self, model: str) -> None:
        """Nothing to check without the network: Ollama needs no key."""

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer from ``/api/chat``."""
        response = self.admin.transport.send(self._chat_call(request, model, False), timeouts)
        return _native_response(_json(response, model), model)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        call = self._chat_call(request, model, False)
        return _native_response(
            _json(await self.admin.transport.asend(call, timeouts), model), model
        )

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks, from the NDJSON lines of ``/api/chat``."""
        call = self._chat_call(request, model, True)
        return self.admin.transport.stream(call, timeouts, _NativeStream(model))

    def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        call = self._chat_call(request, model, True)
        return self.admin.transport.astream(call, timeouts, _NativeStream(model))

    def embed(self, texts: list[str], model: str, timeouts: AttemptTimeouts) -> EmbeddingResponse:
        """One vector per text from ``POST /api/embed``."""
        response = self.admin.transport.send(_embed_call(texts, model), timeouts)
        return _embeddings_from(response, model, len(texts))

    async def aembed(
        self, texts: list[str], model: str, timeouts: AttemptTimeouts
    ) -> EmbeddingResponse:
        """Async `embed`."""
        response = await self.admin.transport.asend(_embed_call(texts, model), timeouts)
        return _embeddings_from(response, model, len(texts))

    # -- request ------------------------------------------------------------------------------

    def native_body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        """The JSON body of a native ``/api/chat`` request."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [_native_message(message) for message in request.messages],
            "stream": stream,
        }
        if request.tools and request.tool_choice != "none":
            body["tools"] = request.tools
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.stop:
            options["stop"] = list(request.stop)
        if self._num_ctx is not None:
            options["num_ctx"] = self._num_ctx
        if options:
            body["options"] = options
        response_format = request.response_format or {}
        if response_format.get("type") == "json_object":
            body["format"] = "json"
        elif response_format.get("type") == "json_schema":
            body["format"] = response_format["json_schema"]["schema"]
        if self._keep_alive is not None:
            body["keep_alive"] = self._keep_alive
        if self._think is not None:
            body["think"] = self._think
        return body

    def _chat_call(self, request: ChatRequest, model: str, stream: bool) -> Call:
        body = self.native_body(request, model, stream=stream)
        return Call("POST", "/api/chat", model, body, events="ndjson")


class OllamaOpenAIClient(_AdminBacked, OpenAICompatibleClient):
    """Chat through Ollama's OpenAI-compatible ``/v1/chat/completions`` and embeddings through
    ``/v1/embeddings``; listing and health through the native API (`OllamaAdmin`), falling back
    to ``/v1/models`` for health on servers without it."""

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        default_model: str,
        default_embedding_model: str = DEFAULT_OLLAMA_EMBEDDING_MODEL,
        dialect: str = "openai",
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        keep_alive: str | int | None = None,
        preferred_models: Sequence[str] = (),
        auto_discovery: bool = True,
        pool: ClientPool | None = None,
    ) -> None:
        self.preferred_models = tuple(preferred_models)
        self.auto_discovery = auto_discovery
        super().__init__(
            Provider.OLLAMA,
            base_url,
            default_model=default_model,
            default_embedding_model=default_embedding_model,
            chat_path="/v1/chat/completions",
            embeddings_path="/v1/embeddings",
            unavailable_error=OllamaUnavailable,
            capabilities=OLLAMA_CAPABILITIES,
            dialect=dialect,
            timeout_seconds=timeout_seconds,
            pool=pool,
        )
        self.admin = OllamaAdmin(
            base_url,
            timeout_seconds=timeout_seconds,
            health_check_timeout=health_check_timeout,
            keep_alive=keep_alive,
            v1_health=True,
            pool=pool,
        )

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        # Ollama's /v1 takes images only as base64 data URLs; say so before sending.
        for message in request.messages:
            for url in message.images:
                _base64_image(url)
        return super()._body(request, model, stream=stream)


def ollama_admin(backend: object) -> OllamaAdmin | None:
    """The `OllamaAdmin` of an Ollama chat client (either API), else None."""
    admin = getattr(backend, "admin", None)
    return admin if isinstance(admin, OllamaAdmin) else None


# -- wire ---------------------------------------------------------------------------------------


def _headers() -> dict[str, str]:
    return {"Accept": "application/json"}


def _status_error(response: httpx.Response, model: str) -> ProviderError:
    """The one status table; the message from Ollama's ``{"error": "..."}`` body."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    detail = redact(str(error))[:MAX_MESSAGE] if error else response.reason_phrase or "error"
    message = f"ollama: HTTP {response.status_code}: {detail}"
    return status_error(response, message, provider="ollama", model=model)


def _json(response: httpx.Response, model: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise _malformed("answer is not JSON", model) from exc
    if not isinstance(data, dict):
        raise _malformed("answer is not a JSON object", model)
    return data


def _malformed(message: str, model: str) -> MalformedResponse:
    return MalformedResponse(f"ollama: {message}", provider="ollama", model=model)


def _stream_failure(message: str, model: str) -> ProviderError:
    text = f"ollama: {redact(message)[:MAX_MESSAGE]}"
    common: dict[str, Any] = {"provider": "ollama", "model": model}
    if "not found" in message or "file does not exist" in message:
        return ModelNotFound(text, **common)
    return ProviderUnavailable(text, **common)


def _is_pulled(model: str, names: frozenset[str]) -> bool:
    """Whether ``model`` is among the pulled ``names`` (a bare name means its ``latest`` tag)."""
    return model in names or (":" not in model and f"{model}:latest" in names)


def _tags_from(response: httpx.Response) -> list[OllamaModel]:
    data = _json(response, "")
    try:
        models = [
            OllamaModel(
                id=entry["name"],
                provider=Provider.OLLAMA,
                name=entry["name"],
                size=int(entry.get("size") or 0),
                modified_at=str(entry.get("modified_at") or ""),
                digest=str(entry.get("digest") or ""),
                details=OllamaModelDetails.model_validate(entry.get("details") or {}),
                raw=entry,
            )
            for entry in data.get("models") or []
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("malformed /api/tags answer", "") from exc
    return models


def _native_response(data: Mapping[str, Any], model: str) -> ChatResponse:
    try:
        message = data["message"]
        calls = [_native_call(call) for call in message.get("tool_calls") or []]
        return ChatResponse(
            content=message.get("content") or None,
            tool_calls=calls,
            finish_reason=_finish_reason(data.get("done_reason"), bool(calls)),
            usage=_native_usage(data),
            provider=Provider.OLLAMA,
            model=str(data.get("model") or model),
            route=RouteTrail(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed("malformed /api/chat answer", model) from exc


def _embed_call(texts: list[str], model: str) -> Call:
    return Call("POST", "/api/embed", model, {"model": model, "input": texts})


def _embeddings_from(response: httpx.Response, model: str, count: int) -> EmbeddingResponse:
    """An ``/api/embed`` answer: ``embeddings`` (always a list), ``prompt_eval_count``."""
    data = _json(response, model)
    try:
        tokens = data.get("prompt_eval_count")
        result = EmbeddingResponse(
            vectors=[embedding_vector(item) for item in data["embeddings"]],
            provider=Provider.OLLAMA,
            model=str(data.get("model") or model),
            input_tokens=int(tokens) if tokens is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(f"malformed embeddings response: {redact(str(exc))}", model) from exc
    return checked_count(result, count)


def _capabilities_from_show(info: OllamaModelInfo) -> Capabilities:
    tools = "tools" in info.capabilities
    return Capabilities(
        tools=tools,
        tool_choice=False,
        embeddings=True,
        structured_output="completion" in info.capabilities,
        json_mode="completion" in info.capabilities,
        vision="vision" in info.capabilities,
        streaming=True,
        context_window=info.context_length,
    )


def _native_message(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.images:
        # The native API takes bare base64, no data: prefix and no URLs.
        wire["images"] = [_base64_image(url) for url in message.images]
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool":
        if message.name:
            wire["tool_name"] = message.name
        if message.tool_call_id:
            wire["tool_call_id"] = message.tool_call_id
    return wire


def _base64_image(url: str) -> str:
    image = parse_data_url(url)
    if image is None:
        raise CapabilityMismatch(
            "ollama: images must be base64 data URLs (data:image/png;base64,...)",
            provider="ollama",
        )
    return image.data


def _native_call(call: Mapping[str, Any]) -> ToolCall:
    function = call["function"]
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return ToolCall(
        id=call.get("id") or new_tool_call_id(), name=function["name"], arguments=arguments
    )


def _finish_reason(done_reason: str | None, called_tools: bool) -> str | None:
    # Ollama keeps done_reason "stop" when the model called tools; forge says so, like /v1 does.
    if called_tools and done_reason in (None, "stop"):
        return "tool_calls"
    return done_reason


def _native_usage(data: Mapping[str, Any]) -> Usage | None:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    return Usage(
        input_tokens=int(data.get("prompt_eval_count") or 0),
        output_tokens=int(data.get("eval_count") or 0),
    )


class _NativeStream:
    """Turns ``/api/chat`` NDJSON objects into chunks."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.done = False
        self._tools = ToolCallAssembler()
        self._calls = 0

    def feed(self, data: dict[str, Any]) -> Iterable[ChatChunk]:
        """The chunks one NDJSON object yields; an ``{"error": ...}`` line raises."""
        if "error" in data:
            raise _stream_failure(str(data["error"]), self.model)
        chunk = self._chunk(data)
        return (chunk,) if chunk is not None else ()

    def end(self) -> None:
        raise _malformed("the stream ended before done", self.model)

    def _chunk(self, data: dict[str, Any]) -> ChatChunk | None:
        try:
            self.model = str(data.get("model") or self.model)
            message = data.get("message") or {}
            deltas = []
            for call in message.get("tool_calls") or []:
                parsed = _native_call(call)
                # A native stream sends each call whole: every call is a new slot.
                deltas.append(
                    self._tools.add(
                        self._calls,
                        id=parsed.id,
                        name=parsed.name,
                        arguments=json.dumps(parsed.arguments),
                    )
                )
                self._calls += 1
            if data.get("done"):
                self.done = True
                calls = self._tools.calls()
                return ChatChunk(
                    content=message.get("content") or "",
                    tool_call_deltas=deltas,
                    tool_calls=calls,
                    finish_reason=_finish_reason(data.get("done_reason"), bool(calls)) or "stop",
                    usage=_native_usage(data),
                    provider=Provider.OLLAMA,
                    model=self.model,
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("malformed /api/chat line", self.model) from exc
        content = message.get("content") or ""
        if not content and not deltas:
            return None
        return ChatChunk(
            content=content, tool_call_deltas=deltas, provider=Provider.OLLAMA, model=self.model
        )
