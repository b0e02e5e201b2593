"""A chat client for any OpenAI-compatible HTTP endpoint, on pooled httpx clients.

Serves OpenAI, OpenRouter, Ollama's ``/v1`` surface and llama-cpp-python's server. httpx errors
and HTTP error statuses become forge errors here, in `_translate_transport` and
`_error_for_status` (in-stream errors in `_stream_error`), and nowhere else.

Fields of OpenAI's documented chat-completions API that forge does not carry yet: request ``n``, ``seed``,
``logprobs``/``top_logprobs``, penalties, ``logit_bias``, ``parallel_tool_calls``,
``reasoning_effort``, ``user``, the ``developer`` role; response ``refusal``, ``annotations``,
usage details (cached / reasoning tokens), ``x-ratelimit-*`` headers and ``x-should-retry``.
OpenRouter: the ``models`` fallback list, ``provider`` routing preferences, ``usage.cost``,
``native_finish_reason``, ``X-Generation-Id``. llama-cpp-python's server sends no usage when
streaming (it ignores ``stream_options``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse, connect_sse

from forge_core._exceptions import (
    AuthenticationFailed,
    BadRequest,
    CapabilityMismatch,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
)
from forge_core._http import ClientPool, default_pool
from forge_core._types import Capabilities, ChatChunk, ChatRequest, ChatResponse, Provider
from forge_core.providers._base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts, ModelInfo
from forge_core.providers._common import (
    MAX_MESSAGE,
    ToolCallAssembler,
    error_class_for_status,
    read_api_key,
    redact,
    status_error,
    timeout_for,
    transport_error,
)
from forge_core.providers._openai_wire import build_body, parse_chunk, parse_completion

__all__ = ["OpenAICompatibleClient", "capabilities_from_openrouter"]


class OpenAICompatibleClient:
    """Chat over ``POST {base_url}{chat_path}`` in the OpenAI chat-completions format.

    The API key is read from ``api_key_env`` at call time and never stored on the object, so it
    cannot leak through a ``repr`` or a traceback's locals of this object.
    """

    def __init__(
        self,
        provider: Provider,
        base_url: str,
        *,
        default_model: str,
        api_key_env: str | None = None,
        chat_path: str = "/chat/completions",
        max_tokens_field: str = "max_tokens",
        extra_headers: Mapping[str, str] | None = None,
        unavailable_error: type[ProviderUnavailable] = ProviderUnavailable,
        capabilities: Capabilities | None = None,
        dialect: str = "openai",
        models_path: str = "/models",
        timeout_seconds: float = 60.0,
        pool: ClientPool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._default_model = default_model
        self.api_key_env = api_key_env
        self._chat_path = chat_path
        self._max_tokens_field = max_tokens_field
        self._extra_headers = dict(extra_headers or {})
        self._unavailable_error = unavailable_error
        self._capabilities = capabilities or Capabilities()
        self.dialect = dialect
        self._models_path = models_path
        self._timeout_seconds = timeout_seconds
        self._model_capabilities: dict[str, Capabilities] = {}
        self._pool = pool or default_pool
        self._env = env

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider.value!r}, base_url={self.base_url!r})"
        )

    # -- protocol ---------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default model of this endpoint."""
        return self._default_model

    def check_ready(self, model: str) -> None:
        """Fail without network when the API key this endpoint needs is not set."""
        self._api_key()

    def capabilities(self, model: str) -> Capabilities:
        """What ``model`` can do: from the last model listing when it said (OpenRouter), else
        the capabilities configured for this endpoint. Never a network call."""
        return self._model_capabilities.get(model, self._capabilities)

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer."""
        client = self._pool.sync_client(self.base_url)
        body = self._body(request, model, stream=False)
        try:
            response = client.post(
                self._chat_path, json=body, headers=self._headers(), timeout=timeout_for(timeouts)
            )
            response.read()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc
        return self._completion_from(response, model)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """Async `chat`."""
        client = self._pool.async_client(self.base_url)
        body = self._body(request, model, stream=False)
        try:
            response = await client.post(
                self._chat_path, json=body, headers=self._headers(), timeout=timeout_for(timeouts)
            )
            await response.aread()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc
        return self._completion_from(response, model)

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer as chunks, parsed from the SSE stream."""
        client = self._pool.sync_client(self.base_url)
        body = self._body(request, model, stream=True)
        tools = ToolCallAssembler()
        try:
            with connect_sse(
                client,
                "POST",
                self._chat_path,
                json=body,
                headers=self._headers(),
                timeout=timeout_for(timeouts),
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise self._error_for_status(source.response, model)
                for event in source.iter_sse():
                    if event.data.strip() == "[DONE]":
                        return
                    yield self._chunk_from(event, model, tools)
                    timeouts.remaining()
        except SSEError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: expected an event stream: {exc}",
                provider=self.provider.value,
                model=model,
            ) from exc
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        client = self._pool.async_client(self.base_url)
        body = self._body(request, model, stream=True)
        tools = ToolCallAssembler()
        try:
            async with aconnect_sse(
                client,
                "POST",
                self._chat_path,
                json=body,
                headers=self._headers(),
                timeout=timeout_for(timeouts),
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise self._error_for_status(source.response, model)
                async for event in source.aiter_sse():
                    if event.data.strip() == "[DONE]":
                        return
                    yield self._chunk_from(event, model, tools)
                    timeouts.remaining()
        except SSEError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: expected an event stream: {exc}",
                provider=self.provider.value,
                model=model,
            ) from exc
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc

    # -- discovery --------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        """The models ``GET {base_url}/models`` lists; OpenRouter's metadata is remembered and
        feeds `capabilities`."""
        client = self._pool.sync_client(self.base_url)
        try:
            response = client.get(
                self._models_path, headers=self._headers(), timeout=self._timeout_seconds
            )
            response.read()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, "", None) from exc
        return self._models_from(response)

    async def alist_models(self) -> list[ModelInfo]:
        """Async `list_models`."""
        client = self._pool.async_client(self.base_url)
        try:
            response = await client.get(
                self._models_path, headers=self._headers(), timeout=self._timeout_seconds
            )
            await response.aread()
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, "", None) from exc
        return self._models_from(response)

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """A key is set (when one is needed) and ``GET /models`` answers 200 within ``timeout``."""
        try:
            response = self._pool.sync_client(self.base_url).get(
                self._models_path, headers=self._headers(), timeout=timeout
            )
        except (ProviderError, httpx.HTTPError):
            return False
        return response.status_code == 200

    async def ahealth(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> bool:
        """Async `health`."""
        try:
            response = await self._pool.async_client(self.base_url).get(
                self._models_path, headers=self._headers(), timeout=timeout
            )
        except (ProviderError, httpx.HTTPError):
            return False
        return response.status_code == 200

    def _models_from(self, response: httpx.Response) -> list[ModelInfo]:
        if response.status_code >= 400:
            raise self._error_for_status(response, "")
        try:
            entries = response.json()["data"]
            models = []
            for entry in entries:
                # Only OpenRouter's listing says what a model can do.
                described = "supported_parameters" in entry or "context_length" in entry
                capabilities = capabilities_from_openrouter(entry) if described else None
                models.append(
                    ModelInfo(
                        id=entry["id"],
                        provider=self.provider,
                        name=entry.get("name"),
                        context_window=capabilities.context_window if capabilities else None,
                        capabilities=capabilities,
                        raw=entry,
                    )
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed model list", provider=self.provider.value
            ) from exc
        self._model_capabilities.update(
            {model.id: model.capabilities for model in models if model.capabilities is not None}
        )
        return models

    # -- request ----------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        return read_api_key(self.provider.value, self.api_key_env, self._env)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._extra_headers}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        try:
            return build_body(
                request,
                model,
                stream=stream,
                max_tokens_field=self._max_tokens_field,
                dialect=self.dialect,
            )
        except CapabilityMismatch as exc:
            raise CapabilityMismatch(
                f"{self.provider.value}: {exc}", provider=self.provider.value, model=model
            ) from exc

    # -- response ---------------------------------------------------------------------------

    def _completion_from(self, response: httpx.Response, model: str) -> ChatResponse:
        if response.status_code >= 400:
            raise self._error_for_status(response, model)
        try:
            data = response.json()
        except ValueError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: chat completion is not JSON",
                provider=self.provider.value,
                model=model,
            ) from exc
        try:
            return parse_completion(data, self.provider, model)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            if _finish_reason(data) == "length":
                raise self._cut_off(model) from exc
            raise MalformedResponse(
                f"{self.provider.value}: malformed chat completion: {redact(str(exc))}",
                provider=self.provider.value,
                model=model,
            ) from exc

    def _chunk_from(
        self, event: ServerSentEvent, model: str, tools: ToolCallAssembler
    ) -> ChatChunk:
        try:
            data = json.loads(event.data)
        except ValueError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed stream event",
                provider=self.provider.value,
                model=model,
            ) from exc
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"{self.provider.value}: stream event is not an object",
                provider=self.provider.value,
                model=model,
            )
        choices = data.get("choices") or []
        if "error" in data or (choices and choices[0].get("finish_reason") == "error"):
            raise self._stream_error(data, model)
        try:
            chunk = parse_chunk(data, self.provider, model)
            deltas = [
                tools.add(delta.index, id=delta.id, name=delta.name, arguments=delta.arguments)
                for delta in chunk.tool_call_deltas
            ]
            calls = tools.calls() if chunk.finish_reason is not None and tools else []
        except (ValueError, KeyError, TypeError) as exc:
            if _finish_reason(data) == "length":
                raise self._cut_off(model) from exc
            raise MalformedResponse(
                f"{self.provider.value}: malformed stream chunk: {redact(str(exc))[:200]}",
                provider=self.provider.value,
                model=model,
            ) from exc
        if not deltas and not calls:
            return chunk
        return chunk.model_copy(update={"tool_call_deltas": deltas, "tool_calls": calls})

    def _cut_off(self, model: str) -> BadRequest:
        # Deterministic: asking again with the same max_tokens cuts it off again, so this is
        # the caller's to fix, not a fault to retry.
        return BadRequest(
            f"{self.provider.value}: the tool call was cut off by max_tokens before its "
            "arguments were complete; raise max_tokens",
            provider=self.provider.value,
            model=model,
        )

    def _stream_error(self, data: dict[str, Any], model: str) -> ProviderError:
        """An error sent inside a 200 stream (OpenAI's ``error`` line, OpenRouter's chunk)."""
        message = f"{self.provider.value}: {_error_message(data) or 'error in stream'}"
        common: dict[str, Any] = {"provider": self.provider.value, "model": model}
        error = data.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        status = (
            int(code)
            if isinstance(code, int) or (isinstance(code, str) and code.isdigit())
            else None
        )
        if status is not None and status < 500:
            return error_class_for_status(status)(message, status_code=status, **common)
        return ProviderUnavailable(message, status_code=status, **common)

    def _error_for_status(self, response: httpx.Response, model: str) -> ProviderError:
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        detail = _error_message(data) or response.reason_phrase or "error"
        message = f"{self.provider.value}: HTTP {status}: {detail}"
        common: dict[str, Any] = {
            "provider": self.provider.value,
            "model": model,
            "status_code": status,
        }
        if _error_code(data) == "insufficient_quota":
            # Out of credit (OpenAI sends it as a 429): waiting will not help, like a 402.
            return AuthenticationFailed(message, **common)
        return status_error(response, message, provider=self.provider.value, model=model)

    def _translate_transport(
        self, exc: httpx.HTTPError, model: str, timeouts: AttemptTimeouts | None
    ) -> ProviderError:
        return transport_error(
            exc,
            where=f"{self.provider.value} at {self.base_url}",
            provider=self.provider.value,
            model=model,
            connect_seconds=self._timeout_seconds if timeouts is None else timeouts.connect,
            read_seconds=self._timeout_seconds if timeouts is None else timeouts.read,
            unavailable=self._unavailable_error,
        )


def capabilities_from_openrouter(entry: Mapping[str, Any]) -> Capabilities:
    """A model's capabilities from its OpenRouter ``/models`` entry."""
    supported = set(entry.get("supported_parameters") or [])
    modalities = (entry.get("architecture") or {}).get("input_modalities") or []
    context = entry.get("context_length") or (entry.get("top_provider") or {}).get("context_length")
    return Capabilities(
        tools="tools" in supported,
        tool_choice="tool_choice" in supported,
        structured_output="structured_outputs" in supported,
        json_mode="response_format" in supported,
        vision="image" in modalities,
        streaming=True,
        context_window=int(context) if context else None,
    )


def _error_code(data: Any) -> Any:
    error = data.get("error") if isinstance(data, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _error_message(data: Any) -> str | None:
    """The message of an OpenAI / OpenRouter (``{"error": {...}}``) or Ollama error body."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, str):
        return redact(error)[:MAX_MESSAGE]
    if isinstance(error, dict) and error.get("message"):
        return redact(str(error["message"]))[:MAX_MESSAGE]
    return None


def _finish_reason(data: Any) -> str | None:
    """The first choice's ``finish_reason`` of a response or chunk body, if it has one."""
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    reason = choices[0].get("finish_reason")
    return reason if isinstance(reason, str) else None
