"""The ``ollama`` provider: `OllamaClient`.

Chat goes through Ollama's OpenAI-compatible ``/v1/chat/completions`` (the default,
inherited from `OpenAICompatibleClient`) or, with ``api: native``, through ``/api/chat`` with
NDJSON streaming and the options only the native API has (``num_ctx``, ``keep_alive``,
``think``). Discovery, health, preloading and pulls always use the native API. Error bodies are
``{"error": "<message>"}``; statuses map through the inherited `_error_for_status`, stream
error lines through `_stream_failure`.

Fields of Ollama's documented API that forge does not carry yet: streamed ``thinking`` text (``think``
is sent, the thoughts are dropped), ``logprobs``, ``seed``/``top_k``/``top_p`` options,
``/api/generate`` as a chat path, ``/api/embed``, ``/api/create``/``copy``/``delete``/``push``,
and the timing stats of the final chunk. ``tool_choice`` does not exist in Ollama: it is ignored,
except ``"none"``, which leaves the tools out of a native request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from forge_core._exceptions import (
    CapabilityMismatch,
    MalformedResponse,
    ModelNotFound,
    OllamaUnavailable,
    ProviderError,
    ProviderUnavailable,
)
from forge_core._http import ClientPool
from forge_core._types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    RouteTrail,
    ToolCall,
    Usage,
)
from forge_core.providers._base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts, ModelInfo
from forge_core.providers._common import (
    MAX_MESSAGE,
    ToolCallAssembler,
    new_tool_call_id,
    parse_data_url,
    redact,
    timeout_for,
)
from forge_core.providers._openai_compat import OpenAICompatibleClient

__all__ = [
    "OllamaClient",
    "OllamaModel",
    "OllamaModelDetails",
    "OllamaModelInfo",
    "OllamaRunningModel",
    "PullProgress",
]

#: Ollama's /v1 surface: tools and JSON output for models that support them; no tool_choice.
OLLAMA_CAPABILITIES = Capabilities(
    tools=True, tool_choice=False, structured_output=True, json_mode=True
)


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


class OllamaClient(OpenAICompatibleClient):
    """An Ollama server: chat (``/v1`` or native ``/api/chat``), discovery, health, pulls.

    Example:
        ```python
        ollama = OllamaClient("http://localhost:11434", default_model="llama3.2")
        if ollama.health_check():
            print([model.name for model in ollama.list_models()])
        ```
    """

    def __init__(
        self,
        base_url: str = "http://localhost:11434",
        *,
        default_model: str,
        api: Literal["openai", "native"] = "openai",
        dialect: str = "openai",
        timeout_seconds: float = 30.0,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        num_ctx: int | None = None,
        keep_alive: str | int | None = None,
        think: bool | str | None = None,
        pool: ClientPool | None = None,
    ) -> None:
        super().__init__(
            Provider.OLLAMA,
            base_url,
            default_model=default_model,
            chat_path="/v1/chat/completions",
            unavailable_error=OllamaUnavailable,
            capabilities=OLLAMA_CAPABILITIES,
            dialect=dialect,
            models_path="/api/tags",
            timeout_seconds=timeout_seconds,
            pool=pool,
        )
        self.api = api
        self._health_check_timeout = health_check_timeout
        self._num_ctx = num_ctx
        self._keep_alive = keep_alive
        self._think = think

    # -- capabilities -----------------------------------------------------------------------

    def capabilities(self, model: str) -> Capabilities:
        """From the last ``/api/show`` of ``model`` when there was one, else the /v1 defaults."""
        return self._model_capabilities.get(model, self._capabilities)

    # -- discovery and health ---------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        """The pulled models (``GET /api/tags``), as `OllamaModel`."""
        return list(self.pulled_models())

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        response = await self._arequest("GET", "/api/tags", model="")
        return list(self._tags_from(response))

    def pulled_models(self) -> list[OllamaModel]:
        """The pulled models (``GET /api/tags``), typed as `OllamaModel`."""
        return self._tags_from(self._request("GET", "/api/tags", model=""))

    def version(self, timeout: float | None = None) -> str:
        """The server's version (``GET /api/version``)."""
        response = self._request(
            "GET", "/api/version", model="", timeout=timeout or self._health_check_timeout
        )
        return str(self._json(response, "")["version"])

    def health_check(self, timeout: float | None = None) -> bool:
        """True when ``/api/version`` answers within the health-check timeout (never raises).

        A server without the native API (404) is still healthy when chat goes through ``/v1``
        and ``/v1/models`` answers: forge is often pointed at other servers with that surface.
        """
        seconds = timeout or self._health_check_timeout
        try:
            self.version(seconds)
        except ModelNotFound:
            return self.api == "openai" and self._v1_answers(seconds)
        except (ProviderError, KeyError, TypeError):
            return False
        return True

    async def ahealth_check(self, timeout: float | None = None) -> bool:
        """Async `health_check`."""
        seconds = timeout or self._health_check_timeout
        try:
            response = await self._arequest("GET", "/api/version", model="", timeout=seconds)
            self._json(response, "")["version"]
        except ModelNotFound:
            if self.api != "openai":
                return False
            try:
                await self._arequest("GET", "/v1/models", model="", timeout=seconds)
            except ProviderError:
                return False
            return True
        except (ProviderError, KeyError, TypeError):
            return False
        return True

    def _v1_answers(self, timeout: float) -> bool:
        try:
            self._request("GET", "/v1/models", model="", timeout=timeout)
        except ProviderError:
            return False
        return True

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """`health_check` (the `ModelCatalog` name)."""
        return self.health_check(timeout)

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        return await self.ahealth_check(timeout)

    def show(self, model: str) -> OllamaModelInfo:
        """Context length and capabilities of ``model`` (``POST /api/show``); 404 ->
        `ModelNotFound`. The answer feeds `capabilities`."""
        response = self._request("POST", "/api/show", model=model, json={"model": model})
        data = self._json(response, model)
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
            raise self._malformed("malformed /api/show answer", model) from exc
        self._model_capabilities[model] = _capabilities_from_show(info)
        return info

    def running_models(self) -> list[OllamaRunningModel]:
        """The models loaded in memory now (``GET /api/ps``)."""
        data = self._json(self._request("GET", "/api/ps", model=""), "")
        try:
            return [OllamaRunningModel.model_validate(entry) for entry in data.get("models") or []]
        except ValueError as exc:
            raise self._malformed("malformed /api/ps answer", "") from exc

    def preload(self, model: str, keep_alive: str | int | None = None) -> None:
        """Load ``model`` into memory without generating (an empty ``/api/generate``) and keep
        it for ``keep_alive`` (default: the configured one, else the server's)."""
        body: dict[str, Any] = {"model": model}
        keep = keep_alive if keep_alive is not None else self._keep_alive
        if keep is not None:
            body["keep_alive"] = keep
        data = self._json(self._request("POST", "/api/generate", model=model, json=body), model)
        if not data.get("done"):
            raise self._malformed("preload did not finish", model)

    def pull(self, model: str, progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull ``model``, passing every ``/api/pull`` progress line to ``progress``.

        An error line in the stream (the status stays 200) raises: `ModelNotFound` when the
        registry has no such model, else `ProviderUnavailable`.
        """
        client = self._pool.sync_client(self.base_url)
        try:
            with client.stream(
                "POST",
                "/api/pull",
                json={"model": model, "stream": True},
                timeout=httpx.Timeout(self._timeout_seconds),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error_for_status(response, model)
                for data in self._ndjson(response.iter_lines(), model):
                    try:
                        line = PullProgress.model_validate(data)
                    except ValueError as exc:
                        raise self._malformed("malformed /api/pull line", model) from exc
                    if progress is not None:
                        progress(line)
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, None) from exc

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        # Ollama's /v1 takes images only as base64 data URLs; say so before sending.
        for message in request.messages:
            for url in message.images:
                _base64_image(url)
        return super()._body(request, model, stream=stream)

    # -- native chat ------------------------------------------------------------------------

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer, through ``/v1`` or (``api: native``) ``/api/chat``."""
        if self.api != "native":
            return super().chat(request, model, timeouts)
        response = self._request(
            "POST",
            "/api/chat",
            model=model,
            json=self.native_body(request, model, stream=False),
            timeout=timeout_for(timeouts),
            timeouts=timeouts,
        )
        return self._native_response(self._json(response, model), model)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        if self.api != "native":
            return await super().achat(request, model, timeouts)
        response = await self._arequest(
            "POST",
            "/api/chat",
            model=model,
            json=self.native_body(request, model, stream=False),
            timeout=timeout_for(timeouts),
            timeouts=timeouts,
        )
        return self._native_response(self._json(response, model), model)

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks: SSE from ``/v1``, or NDJSON from native ``/api/chat``."""
        if self.api != "native":
            yield from super().stream(request, model, timeouts)
            return
        client = self._pool.sync_client(self.base_url)
        state = _NativeStream(self, model)
        try:
            with client.stream(
                "POST",
                "/api/chat",
                json=self.native_body(request, model, stream=True),
                timeout=timeout_for(timeouts),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error_for_status(response, model)
                for data in self._ndjson(response.iter_lines(), model):
                    chunk = state.feed(data)
                    if chunk is not None:
                        yield chunk
                    if state.done:
                        return
                    timeouts.remaining()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc
        raise self._malformed("the stream ended before done", model)

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        if self.api != "native":
            async for compat_chunk in super().astream(request, model, timeouts):
                yield compat_chunk
            return
        client = self._pool.async_client(self.base_url)
        state = _NativeStream(self, model)
        try:
            async with client.stream(
                "POST",
                "/api/chat",
                json=self.native_body(request, model, stream=True),
                timeout=timeout_for(timeouts),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._error_for_status(response, model)
                async for line in response.aiter_lines():
                    for data in self._ndjson(iter([line]), model):
                        chunk = state.feed(data)
                        if chunk is not None:
                            yield chunk
                        if state.done:
                            return
                    timeouts.remaining()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc
        raise self._malformed("the stream ended before done", model)

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

    # -- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        model: str,
        json: Any = None,
        timeout: float | httpx.Timeout | None = None,
        timeouts: AttemptTimeouts | None = None,
    ) -> httpx.Response:
        client = self._pool.sync_client(self.base_url)
        try:
            response = client.request(
                method, path, json=json, timeout=timeout or self._timeout_seconds
            )
            response.read()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc
        if response.status_code >= 400:
            raise self._error_for_status(response, model)
        return response

    async def _arequest(
        self,
        method: str,
        path: str,
        *,
        model: str,
        json: Any = None,
        timeout: float | httpx.Timeout | None = None,
        timeouts: AttemptTimeouts | None = None,
    ) -> httpx.Response:
        client = self._pool.async_client(self.base_url)
        try:
            response = await client.request(
                method, path, json=json, timeout=timeout or self._timeout_seconds
            )
            await response.aread()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc
        if response.status_code >= 400:
            raise self._error_for_status(response, model)
        return response

    def _json(self, response: httpx.Response, model: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise self._malformed("answer is not JSON", model) from exc
        if not isinstance(data, dict):
            raise self._malformed("answer is not a JSON object", model)
        return data

    def _malformed(self, message: str, model: str) -> MalformedResponse:
        return MalformedResponse(f"ollama: {message}", provider=self.provider.value, model=model)

    def _ndjson(self, lines: Iterator[str], model: str) -> Iterator[dict[str, Any]]:
        """Objects of an NDJSON stream; an ``{"error": ...}`` line raises."""
        for line in lines:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise self._malformed("malformed NDJSON line", model) from exc
            if not isinstance(data, dict):
                raise self._malformed("NDJSON line is not an object", model)
            if "error" in data:
                raise self._stream_failure(str(data["error"]), model)
            yield data

    def _stream_failure(self, message: str, model: str) -> ProviderError:
        text = f"ollama: {redact(message)[:MAX_MESSAGE]}"
        common: dict[str, Any] = {"provider": self.provider.value, "model": model}
        if "not found" in message or "file does not exist" in message:
            return ModelNotFound(text, **common)
        return ProviderUnavailable(text, **common)

    def _tags_from(self, response: httpx.Response) -> list[OllamaModel]:
        data = self._json(response, "")
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
            raise self._malformed("malformed /api/tags answer", "") from exc
        return models

    def _native_response(self, data: Mapping[str, Any], model: str) -> ChatResponse:
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
            raise self._malformed("malformed /api/chat answer", model) from exc


def _capabilities_from_show(info: OllamaModelInfo) -> Capabilities:
    tools = "tools" in info.capabilities
    return Capabilities(
        tools=tools,
        tool_choice=False,
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
    """Turns ``/api/chat`` NDJSON objects into chunks (shared by sync and async)."""

    def __init__(self, client: OllamaClient, model: str) -> None:
        self._client = client
        self.model = model
        self.done = False
        self._tools = ToolCallAssembler()
        self._calls = 0

    def feed(self, data: dict[str, Any]) -> ChatChunk | None:
        """The chunk one NDJSON object yields, if any."""
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
            raise self._client._malformed("malformed /api/chat line", self.model) from exc
        content = message.get("content") or ""
        if not content and not deltas:
            return None
        return ChatChunk(
            content=content, tool_call_deltas=deltas, provider=Provider.OLLAMA, model=self.model
        )
