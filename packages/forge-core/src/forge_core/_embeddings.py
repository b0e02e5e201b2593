"""`Embedder`: text embeddings routed like chat — local first, the same selection and fallback.

Backends: the ``huggingface`` provider in process (llama-cpp-python in embedding mode on a local
GGUF, the embedded Gemma 3 270M by default), Ollama's ``POST /api/embed`` and OpenAI's
``POST /embeddings`` (also served by OpenAI-compatible servers such as llama-cpp-python's with
``--embedding``). Anthropic and OpenRouter have no embeddings API here; they are dropped with
that reason.

Vectors from two different models live in different spaces, so by default an `Embedder` keeps
to the provider and model that served its first request: a later failure of that model is an
error, never a silent switch that would mix vector spaces in one index.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, Field

from forge_core._config import ForgeConfig, HuggingFaceConfig, apply_overrides, load_config
from forge_core._exceptions import (
    CapabilityMismatch,
    FallbackFailed,
    MalformedResponse,
    MissingDependency,
    OllamaUnavailable,
    ProviderError,
    ProviderUnavailable,
)
from forge_core._http import ClientPool, default_pool
from forge_core._local_models import (
    EMBEDDED_MODEL,
    resolve_local_model,
)
from forge_core._threads import in_thread
from forge_core._types import Attempt, Drop, ModelId, Provider, RouteTrail
from forge_core.providers._common import read_api_key, status_error, transport_error
from forge_core.providers._huggingface import HuggingFaceBackend

__all__ = [
    "DEFAULT_EMBEDDING_MODELS",
    "Embedder",
    "EmbeddingBackend",
    "EmbeddingResponse",
]

logger = logging.getLogger("forge.embeddings")

#: The model each provider embeds with when the request names none.
DEFAULT_EMBEDDING_MODELS: dict[Provider, str] = {
    Provider.HUGGINGFACE: EMBEDDED_MODEL,
    Provider.OLLAMA: "nomic-embed-text",
    Provider.OPENAI: "text-embedding-3-small",
}
_NO_EMBEDDINGS_API = {
    Provider.ANTHROPIC: "anthropic has no embeddings API",
    Provider.OPENROUTER: "openrouter embeddings are not supported by forge yet",
}
_EXTRA_HINT = "pip install 'forge-core[llama]'"
_KEY_LIKE = re.compile(r"\b(sk|key|rk)-[A-Za-z0-9_\-\.\*]{4,}")
_MAX_MESSAGE = 300


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


class EmbeddingBackend(Protocol):
    """One provider endpoint that turns texts into vectors."""

    provider: Provider

    def check_ready(self, model: str) -> None:
        """Raise a `ProviderError` when ``model`` cannot be used here without trying."""
        ...

    def embed(self, texts: list[str], model: str, timeout: httpx.Timeout) -> EmbeddingResponse:
        """One vector per text, in order (the `Embedder` fills in ``route``)."""
        ...

    async def aembed(
        self, texts: list[str], model: str, timeout: httpx.Timeout
    ) -> EmbeddingResponse:
        """Async `embed`."""
        ...


# -- in process ---------------------------------------------------------------------------------


#: Seconds a local embedding call may take when the caller gives no read limit.
_LOCAL_EMBED_TIMEOUT = 600.0


class LlamaCppEmbeddings:
    """Embeddings from a local GGUF run by llama-cpp-python (the ``huggingface`` provider).

    The model is an entry of the one local-model pool (`HuggingFaceBackend.embed`), loaded in
    embedding mode apart from its chat instance (llama.cpp fixes embedding mode and pooling
    when the context is created), with the configured isolation: in a worker process by
    default. Token vectors are mean-pooled and L2-normalised, so cosine similarity is a dot
    product.
    """

    provider = Provider.HUGGINGFACE

    def __init__(self, config: HuggingFaceConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def check_ready(self, model: str) -> None:
        """The extra is installed and ``model`` resolves to a GGUF file (nothing is loaded)."""
        if importlib.util.find_spec("llama_cpp") is None:
            raise MissingDependency(
                f"huggingface: embeddings need llama-cpp-python: {_EXTRA_HINT}",
                provider=self.provider.value,
                model=model,
            )
        resolved = resolve_local_model(model, self._config)
        if resolved.format != "gguf":
            raise CapabilityMismatch(
                f"huggingface: {model} is a {resolved.format} model; embeddings need a GGUF",
                provider=self.provider.value,
                model=model,
            )

    def embed(self, texts: list[str], model: str, timeout: httpx.Timeout) -> EmbeddingResponse:
        """Vectors from the local-model pool (the one `Forge` chats through: same isolation,
        keep-alive, `stats()` and `unload_models()`)."""
        seconds = timeout.read or _LOCAL_EMBED_TIMEOUT
        vectors = HuggingFaceBackend(self._config).embed(texts, model, seconds)
        return EmbeddingResponse(vectors=vectors, provider=self.provider, model=model)

    async def aembed(
        self, texts: list[str], model: str, timeout: httpx.Timeout
    ) -> EmbeddingResponse:
        """`embed` on a thread of its own, so the event loop is never blocked."""
        return await in_thread(self.embed, texts, model, timeout)


# -- over HTTP ----------------------------------------------------------------------------------


class _HTTPEmbeddings:
    """Shared request and error handling of the HTTP embedding endpoints."""

    provider: Provider
    path: str

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None = None,
        unavailable_error: type[ProviderUnavailable] = ProviderUnavailable,
        pool: ClientPool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self._unavailable_error = unavailable_error
        self._pool = pool or default_pool
        self._env = env

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def check_ready(self, model: str) -> None:
        """Fail without network when the API key this endpoint needs is not set."""
        self._api_key()

    def _api_key(self) -> str | None:
        return read_api_key(self.provider.value, self.api_key_env, self._env)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, texts: list[str], model: str) -> dict[str, Any]:
        raise NotImplementedError

    def _parse(self, data: Any, count: int, model: str) -> EmbeddingResponse:
        raise NotImplementedError

    def embed(self, texts: list[str], model: str, timeout: httpx.Timeout) -> EmbeddingResponse:
        """One POST for the whole batch."""
        client = self._pool.sync_client(self.base_url)
        try:
            response = client.post(
                self.path, json=self._body(texts, model), headers=self._headers(), timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model, timeout) from exc
        return self._response(response, len(texts), model)

    async def aembed(
        self, texts: list[str], model: str, timeout: httpx.Timeout
    ) -> EmbeddingResponse:
        """Async `embed` (on the pooled client of the running loop)."""
        client = self._pool.async_client(self.base_url)
        try:
            response = await client.post(
                self.path, json=self._body(texts, model), headers=self._headers(), timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model, timeout) from exc
        return self._response(response, len(texts), model)

    def _response(self, response: httpx.Response, count: int, model: str) -> EmbeddingResponse:
        if response.status_code >= 400:
            raise self._status_error(response, model)
        try:
            result = self._parse(response.json(), count, model)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise MalformedResponse(
                f"{self.provider.value}: malformed embeddings response: {_redact(str(exc))}",
                provider=self.provider.value,
                model=model,
            ) from exc
        if len(result.vectors) != count:
            raise MalformedResponse(
                f"{self.provider.value}: asked for {count} embeddings, got {len(result.vectors)}",
                provider=self.provider.value,
                model=model,
            )
        return result

    def _status_error(self, response: httpx.Response, model: str) -> ProviderError:
        status = response.status_code
        try:
            detail = _error_message(response.json())
        except ValueError:
            detail = None
        message = f"{self.provider.value}: HTTP {status}: {detail or response.reason_phrase}"
        return status_error(response, message, provider=self.provider.value, model=model)

    def _transport_error(
        self, exc: httpx.HTTPError, model: str, timeout: httpx.Timeout
    ) -> ProviderError:
        return transport_error(
            exc,
            where=f"{self.provider.value} at {self.base_url}",
            provider=self.provider.value,
            model=model,
            connect_seconds=timeout.connect or 0.0,
            read_seconds=timeout.read or 0.0,
            unavailable=self._unavailable_error,
        )


class OllamaEmbeddings(_HTTPEmbeddings):
    """Ollama's native ``POST /api/embed`` (``input`` is a list; ``embeddings`` comes back)."""

    provider = Provider.OLLAMA
    path = "/api/embed"

    def _body(self, texts: list[str], model: str) -> dict[str, Any]:
        return {"model": model, "input": texts}

    def _parse(self, data: Any, count: int, model: str) -> EmbeddingResponse:
        tokens = data.get("prompt_eval_count")
        return EmbeddingResponse(
            vectors=[_vector(item) for item in data["embeddings"]],
            provider=self.provider,
            model=str(data.get("model") or model),
            input_tokens=int(tokens) if tokens is not None else None,
        )


class OpenAIEmbeddings(_HTTPEmbeddings):
    """OpenAI's ``POST {base_url}/embeddings`` (``data[i].embedding``, ordered by ``index``)."""

    provider = Provider.OPENAI
    path = "/embeddings"

    def _body(self, texts: list[str], model: str) -> dict[str, Any]:
        return {"model": model, "input": texts, "encoding_format": "float"}

    def _parse(self, data: Any, count: int, model: str) -> EmbeddingResponse:
        items = sorted(data["data"], key=lambda item: int(item.get("index", 0)))
        usage = data.get("usage") or {}
        tokens = usage.get("prompt_tokens")
        return EmbeddingResponse(
            vectors=[_vector(item["embedding"]) for item in items],
            provider=self.provider,
            model=str(data.get("model") or model),
            input_tokens=int(tokens) if tokens is not None else None,
        )


def _vector(raw: Any) -> list[float]:
    """One embedding from a response body.

    llama-cpp-python's server, running a model whose GGUF declares no pooling (chat models such
    as Gemma), answers with one vector per token instead of one per text; those are
    mean-pooled and L2-normalised here, as the in-process backend does.
    """
    if isinstance(raw, list) and raw and all(isinstance(row, list) for row in raw):
        return _normalised(_mean([_numbers(row) for row in raw]))
    return _numbers(raw)


def _numbers(raw: Any) -> list[float]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("an embedding is not a non-empty list of numbers")
    vector = [float(x) for x in raw]
    if not all(math.isfinite(x) for x in vector):
        raise ValueError("an embedding holds a non-finite number")
    return vector


def _mean(rows: list[list[float]]) -> list[float]:
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise ValueError("token embeddings of different lengths")
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)]


def _normalised(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def _error_message(data: Any) -> str | None:
    """The message of an OpenAI (``{"error": {...}}``) or Ollama (``{"error": "..."}``) body."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return _redact(str(error))[:_MAX_MESSAGE] if error else None


def _redact(text: str) -> str:
    return _KEY_LIKE.sub("[redacted]", text)


def build_embedding_backends(
    config: ForgeConfig, *, pool: ClientPool | None = None, env: Mapping[str, str] | None = None
) -> dict[Provider, EmbeddingBackend]:
    """One embedding backend per provider that has an embeddings API."""
    local = config.providers.local
    openai = config.providers.cloud.openai
    return {
        Provider.HUGGINGFACE: LlamaCppEmbeddings(local.huggingface),
        Provider.OLLAMA: OllamaEmbeddings(
            local.ollama.base_url, unavailable_error=OllamaUnavailable, pool=pool, env=env
        ),
        Provider.OPENAI: OpenAIEmbeddings(
            openai.base_url, api_key_env=openai.api_key_env, pool=pool, env=env
        ),
    }


# -- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    provider: Provider
    model: str
    backend: EmbeddingBackend


class Embedder:
    """Text embeddings routed by forge: local first, with fallback, one vector space.

    ``config`` is a `ForgeConfig`, a path to a ``forge.yaml`` or None (found as for `Forge`);
    ``overrides`` has the file's shape. ``model`` (``provider:model``) pins the first
    candidate; other providers use ``models`` (provider name -> model) or
    `DEFAULT_EMBEDDING_MODELS`. Candidates come in the configured fallback order
    (``local_first`` puts Ollama and the in-process model first; ``local_only`` drops cloud
    providers). Once a candidate has served, ``pin_after_first`` (default) keeps every later
    call on that provider and model, because vectors of different models cannot be compared.

    Example:
        ```python
        embedder = Embedder()
        vectors = embedder.embed(["first text", "second text"])
        print(embedder.last_route.provider, len(vectors[0]))
        ```
    """

    def __init__(
        self,
        config: ForgeConfig | str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        models: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        pin_after_first: bool = True,
        pool: ClientPool | None = None,
        backends: Mapping[Provider, EmbeddingBackend] | None = None,
    ) -> None:
        if isinstance(config, ForgeConfig):
            self.config = apply_overrides(config, overrides) if overrides else config
        else:
            self.config = load_config(config, overrides=overrides)
        self.model = model
        self._models = {Provider(name): value for name, value in (models or {}).items()}
        self.pin_after_first = pin_after_first
        self._backends = dict(backends or build_embedding_backends(self.config, pool=pool))
        self._served: tuple[Provider, str] | None = None
        self._served_lock = threading.Lock()
        self.last_route: RouteTrail | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, served={self.served!r})"

    @property
    def served(self) -> str | None:
        """``provider:model`` that served the first successful call, if any yet."""
        return f"{self._served[0].value}:{self._served[1]}" if self._served else None

    def plan(self) -> tuple[list[_Candidate], list[Drop]]:
        """The candidates to try, in order, and those dropped before any call (with why)."""
        prefs = self.config.model_preferences
        fallback = self.config.providers.fallback
        order = list(fallback.order)
        if prefs.default_provider is not None:
            order = [prefs.default_provider] + [p for p in order if p != prefs.default_provider]
        if prefs.local_first:
            order = [p for p in order if p.is_local] + [p for p in order if not p.is_local]
        wanted: list[tuple[Provider, str | None]] = [(p, None) for p in order]
        pinned = self._pinned()
        if pinned is not None:
            wanted = [pinned] + [(p, None) for p in order if p != pinned[0]]
        if not fallback.enabled:
            wanted = wanted[:1]

        candidates: list[_Candidate] = []
        drops: list[Drop] = []
        served = self._served if self.pin_after_first else None
        for provider, model in wanted:
            model = model or self._models.get(provider) or DEFAULT_EMBEDDING_MODELS.get(provider)
            backend = self._backends.get(provider)
            if backend is None or model is None:
                reason = _NO_EMBEDDINGS_API.get(provider, "no embeddings client for this provider")
                drops.append(Drop(provider=provider, model=model, reason=reason))
                continue
            if served is not None and (provider, model) != served:
                drops.append(
                    Drop(
                        provider=provider,
                        model=model,
                        reason=f"this Embedder's vectors come from {self.served}",
                    )
                )
                continue
            if prefs.local_only and not provider.is_local:
                drops.append(
                    Drop(provider=provider, model=model, reason="local_only: cloud not allowed")
                )
                continue
            try:
                backend.check_ready(model)
            except ProviderError as exc:
                drops.append(Drop(provider=provider, model=model, reason=str(exc)))
                continue
            candidates.append(_Candidate(provider, model, backend))
        return candidates, drops

    def _pinned(self) -> tuple[Provider, str | None] | None:
        if not self.model:
            return None
        model_id = ModelId.parse(self.model)
        if model_id.provider is not None:
            return model_id.provider, model_id.model
        order = self.config.providers.fallback.order
        provider = self.config.model_preferences.default_provider or (order[0] if order else None)
        return (provider, model_id.model) if provider is not None else None

    def _timeout(self, provider: Provider, deadline: float) -> httpx.Timeout:
        local = self.config.providers.local
        cloud = self.config.providers.cloud
        read = {
            Provider.OLLAMA: local.ollama.timeout_seconds,
            Provider.OPENAI: cloud.openai.timeout_seconds,
        }.get(provider, self.config.routing.total_timeout_seconds)
        left = deadline - time.monotonic()
        read = max(min(read, left), 0.001)
        return httpx.Timeout(read, connect=min(self.config.routing.connect_timeout_seconds, read))

    def embed_with_route(self, texts: Sequence[str]) -> EmbeddingResponse:
        """Vectors for ``texts`` from the first candidate that answers, with the route."""
        batch = _batch(texts)
        run = _Run(self)
        for candidate in run.candidates:
            timeout = run.begin(candidate)
            if timeout is None:
                break
            try:
                response = candidate.backend.embed(batch, candidate.model, timeout)
            except ProviderError as exc:
                run.failed(candidate, exc)
                continue
            return run.answered(candidate, response)
        raise run.exhausted()

    async def aembed_with_route(self, texts: Sequence[str]) -> EmbeddingResponse:
        """Async `embed_with_route`."""
        batch = _batch(texts)
        run = _Run(self)
        for candidate in run.candidates:
            timeout = run.begin(candidate)
            if timeout is None:
                break
            try:
                response = await candidate.backend.aembed(batch, candidate.model, timeout)
            except ProviderError as exc:
                run.failed(candidate, exc)
                continue
            return run.answered(candidate, response)
        raise run.exhausted()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order. An empty batch returns ``[]`` without a call."""
        if not texts:
            return []
        return self.embed_with_route(texts).vectors

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """Async `embed`."""
        if not texts:
            return []
        return (await self.aembed_with_route(texts)).vectors

    def _record_served(self, provider: Provider, model: str) -> None:
        with self._served_lock:
            if self._served is None:
                self._served = (provider, model)


def _batch(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("Embedder.embed takes a list of texts, not one string")
    return list(texts)


class _Run:
    """The bookkeeping of one routed embedding request (mirrors the chat router's `_Route`)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.candidates, drops = embedder.plan()
        self.trail = RouteTrail(drops=drops)
        self._started = time.monotonic()
        self._deadline = self._started + embedder.config.routing.total_timeout_seconds
        self._attempt_started = self._started

    def _elapsed_ms(self, since: float) -> float:
        return (time.monotonic() - since) * 1000.0

    def begin(self, candidate: _Candidate) -> httpx.Timeout | None:
        self._attempt_started = time.monotonic()
        if self._attempt_started >= self._deadline:
            self.trail.drops.append(
                Drop(
                    provider=candidate.provider,
                    model=candidate.model,
                    reason="total deadline passed before this candidate",
                )
            )
            return None
        return self._embedder._timeout(candidate.provider, self._deadline)

    def failed(self, candidate: _Candidate, exc: ProviderError) -> None:
        logger.info("forge: %s:%s embeddings failed: %s", candidate.provider, candidate.model, exc)
        self.trail.attempts.append(
            Attempt(
                provider=candidate.provider,
                model=candidate.model,
                ok=False,
                error_kind=exc.kind,
                message=str(exc),
                elapsed_ms=self._elapsed_ms(self._attempt_started),
            )
        )

    def answered(self, candidate: _Candidate, response: EmbeddingResponse) -> EmbeddingResponse:
        self.trail.attempts.append(
            Attempt(
                provider=candidate.provider,
                model=candidate.model,
                ok=True,
                elapsed_ms=self._elapsed_ms(self._attempt_started),
            )
        )
        self.trail.provider = candidate.provider
        self.trail.model = candidate.model
        self.trail.total_ms = self._elapsed_ms(self._started)
        self.trail.ttft_ms = self.trail.total_ms
        # The candidate's model (not the echo in the body) is what later calls pin to.
        self._embedder._record_served(candidate.provider, candidate.model)
        self._embedder.last_route = self.trail
        return response.model_copy(update={"provider": candidate.provider, "route": self.trail})

    def exhausted(self) -> FallbackFailed:
        self.trail.total_ms = self._elapsed_ms(self._started)
        self._embedder.last_route = self.trail
        summary = self.trail.describe() or "  no provider is configured"
        return FallbackFailed(f"no provider could embed the texts:\n{summary}", route=self.trail)
