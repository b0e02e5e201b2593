"""A chat client for any OpenAI-compatible HTTP endpoint, on pooled httpx clients.

Serves OpenAI, OpenRouter, Ollama's ``/v1`` surface and llama-cpp-python's server. httpx errors
and HTTP error statuses become forge errors here, in `_translate_transport` and
`_error_for_status`, and nowhere else.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse, connect_sse

from forge_core._exceptions import (
    AuthenticationFailed,
    BadRequest,
    ForgeTimeout,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from forge_core._http import ClientPool, default_pool
from forge_core._types import Capabilities, ChatChunk, ChatRequest, ChatResponse, Provider
from forge_core.providers._base import AttemptTimeouts
from forge_core.providers._openai_wire import build_body, parse_chunk, parse_completion

__all__ = ["OpenAICompatibleClient"]

_KEY_LIKE = re.compile(r"\b(sk|key|rk)-[A-Za-z0-9_\-\.\*]{4,}")
_MAX_MESSAGE = 300
_RETRY_AFTER_CAP = 3600.0


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
        """The capabilities configured for this endpoint (the same for every model for now)."""
        return self._capabilities

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer."""
        client = self._pool.sync_client(self.base_url)
        body = self._body(request, model, stream=False)
        try:
            response = client.post(
                self._chat_path, json=body, headers=self._headers(), timeout=_timeout(timeouts)
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
                self._chat_path, json=body, headers=self._headers(), timeout=_timeout(timeouts)
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
        try:
            with connect_sse(
                client,
                "POST",
                self._chat_path,
                json=body,
                headers=self._headers(),
                timeout=_timeout(timeouts),
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise self._error_for_status(source.response, model)
                for event in source.iter_sse():
                    if event.data.strip() == "[DONE]":
                        return
                    yield self._chunk_from(event, model)
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
        try:
            async with aconnect_sse(
                client,
                "POST",
                self._chat_path,
                json=body,
                headers=self._headers(),
                timeout=_timeout(timeouts),
            ) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise self._error_for_status(source.response, model)
                async for event in source.aiter_sse():
                    if event.data.strip() == "[DONE]":
                        return
                    yield self._chunk_from(event, model)
                    timeouts.remaining()
        except SSEError as exc:
            raise MalformedResponse(
                f"{self.provider.value}: expected an event stream: {exc}",
                provider=self.provider.value,
                model=model,
            ) from exc
        except httpx.HTTPError as exc:
            raise self._translate_transport(exc, model, timeouts) from exc

    # -- request ----------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        env = os.environ if self._env is None else self._env
        key = env.get(self.api_key_env, "").strip()
        if not key:
            raise AuthenticationFailed(
                f"{self.provider.value}: no API key: set the {self.api_key_env} "
                "environment variable",
                provider=self.provider.value,
            )
        return key

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._extra_headers}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        return build_body(request, model, stream=stream, max_tokens_field=self._max_tokens_field)

    # -- response ---------------------------------------------------------------------------

    def _completion_from(self, response: httpx.Response, model: str) -> ChatResponse:
        if response.status_code >= 400:
            raise self._error_for_status(response, model)
        try:
            return parse_completion(response.json(), self.provider, model)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed chat completion: {_redact(str(exc))}",
                provider=self.provider.value,
                model=model,
            ) from exc

    def _chunk_from(self, event: ServerSentEvent, model: str) -> ChatChunk:
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
            message = _error_message(data) or "error in stream"
            raise ProviderUnavailable(
                f"{self.provider.value}: {message}", provider=self.provider.value, model=model
            )
        try:
            return parse_chunk(data, self.provider, model)
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed stream chunk",
                provider=self.provider.value,
                model=model,
            ) from exc

    def _error_for_status(self, response: httpx.Response, model: str) -> ProviderError:
        status = response.status_code
        try:
            detail = _error_message(response.json())
        except ValueError:
            detail = None
        detail = detail or response.reason_phrase or "error"
        message = f"{self.provider.value}: HTTP {status}: {detail}"
        common: dict[str, Any] = {
            "provider": self.provider.value,
            "model": model,
            "status_code": status,
        }
        if status in (401, 403):
            return AuthenticationFailed(message, **common)
        if status == 404:
            return ModelNotFound(message, **common)
        if status in (429, 529):
            return RateLimited(message, retry_after=_retry_after(response), **common)
        if status == 408:
            return ForgeTimeout(message, **common)
        if status >= 500:
            return ProviderUnavailable(message, **common)
        return BadRequest(message, **common)

    def _translate_transport(
        self, exc: httpx.HTTPError, model: str, timeouts: AttemptTimeouts
    ) -> ProviderError:
        where = f"{self.provider.value} at {self.base_url}"
        common: dict[str, Any] = {"provider": self.provider.value, "model": model}
        if isinstance(exc, httpx.ConnectTimeout):
            return ForgeTimeout(
                f"{where}: connect timeout after {timeouts.connect:g}s",
                timeout_seconds=timeouts.connect,
                **common,
            )
        if isinstance(exc, httpx.TimeoutException):
            return ForgeTimeout(
                f"{where}: no data within {timeouts.read:g}s",
                timeout_seconds=timeouts.read,
                **common,
            )
        if isinstance(exc, httpx.ConnectError):
            return self._unavailable_error(f"{where}: cannot connect: {_reason(exc)}", **common)
        return ProviderUnavailable(f"{where}: connection failed: {_reason(exc)}", **common)


def _timeout(timeouts: AttemptTimeouts) -> httpx.Timeout:
    read = timeouts.read_timeout()
    return httpx.Timeout(read, connect=min(timeouts.connect, read))


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return _redact(text)


def _error_message(data: Any) -> str | None:
    """The message of an OpenAI / OpenRouter (``{"error": {...}}``) or Ollama error body."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, str):
        return _redact(error)[:_MAX_MESSAGE]
    if isinstance(error, dict) and error.get("message"):
        return _redact(str(error["message"]))[:_MAX_MESSAGE]
    return None


def _redact(text: str) -> str:
    return _KEY_LIKE.sub("[redacted]", text)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), capped."""
    raw_ms = response.headers.get("retry-after-ms")
    if raw_ms:
        try:
            return min(float(raw_ms) / 1000.0, _RETRY_AFTER_CAP)
        except ValueError:
            pass
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), _RETRY_AFTER_CAP)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), _RETRY_AFTER_CAP)
