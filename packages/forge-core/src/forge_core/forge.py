"""`Forge`: the one object users (and the framework packages) talk to."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

from forge_core._threads import in_thread
from forge_core.backends import build_backends
from forge_core.backends.base import ChatBackend
from forge_core.backends.http.pool import ClientPool
from forge_core.config.loader import apply_overrides, load_config
from forge_core.config.schema import ForgeConfig
from forge_core.routing.health import HealthMonitor
from forge_core.routing.retry import Clock
from forge_core.routing.router import Router
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    ModelRequirements,
    Provider,
)

__all__ = ["Forge", "MessagesInput"]

#: What `Forge.chat` accepts as the conversation: a prompt, or messages (objects or dicts).
MessagesInput = str | Sequence[Message | Mapping[str, Any]]

#: The keyword arguments `Forge.chat` and its siblings take: `ChatRequest` fields.
_PARAMETERS = frozenset(ChatRequest.model_fields)


class Forge:
    """A local-first router over every configured provider.

    ``config`` is a `ForgeConfig`, a path to a ``forge.yaml``, or None (``$FORGE_CONFIG``,
    ``./forge.yaml``, the user config dir, then built-in defaults). ``overrides`` has the file's
    shape and wins over the file and the ``FORGE_*`` env vars. ``env`` is where provider
    clients read the API keys named by ``api_key_env`` (default: ``os.environ``), so a key can
    be handed to one `Forge` without putting it in the process environment. ``backends``
    replaces the clients built from the config: a mapping of deployment names (``openai``,
    ``ollama`` ... for the default deployments) to backends, and only those are routed to
    (tests give `forge_core.testing.ScriptedBackend` s here).

    A `Forge` holds connections, and may start worker processes and threads; `close` (or
    ``with`` / ``async with``) releases them (see `close`). One left open is cleaned up when
    the interpreter exits.

    Example:
        ```python
        with Forge() as forge:
            answer = forge.chat("Why is the sky blue?", max_tokens=64)
            print(answer.content, answer.provider, answer.route.attempts)
        ```
    """

    def __init__(
        self,
        config: ForgeConfig | str | os.PathLike[str] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        pool: ClientPool | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        backends: Mapping[str, ChatBackend] | None = None,
    ) -> None:
        if isinstance(config, ForgeConfig):
            self.config = apply_overrides(config, overrides) if overrides else config
        else:
            self.config = load_config(config, overrides=overrides)
        #: The HTTP pool; a `Forge` closes the one it made, never one it was given.
        self._pool = pool if pool is not None else ClientPool()
        self._owns_pool = pool is None
        if backends is None:
            backends = build_backends(self.config, pool=self._pool, env=env)
        self._router = Router(self.config, backends, clock=clock)
        self._monitors: list[HealthMonitor] = []
        self._closed = False
        self._close_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether `close` (or `aclose`) was called; a closed `Forge` serves no request."""
        return self._closed

    def close(self) -> None:
        """Release what this `Forge` opened. Idempotent; thread-safe.

        Stops the health monitors it started; closes its HTTP connections (sync, and async on
        every event loop: see `forge_core.backends.http.pool.ClientPool.close`), unless the
        pool was passed in (its owner closes it); gives up its share of what it uses with
        other `Forge` objects of the process: a local model (and its worker processes) is
        unloaded, and a Redis state store (its connections, reconnect and load-publishing
        threads) closed, when no other open `Forge` uses it. A request still running fails;
        a later call raises `RuntimeError`. In async code prefer `aclose`.
        """
        if self._mark_closed():
            self._release()

    async def aclose(self) -> None:
        """`close` from async code: the running loop's connections are closed here, the rest
        (which may wait for threads and processes to end) on a thread of its own."""
        if not self._mark_closed():
            return
        if self._owns_pool:
            await self._pool.aclose()
        await in_thread(self._release)

    def _mark_closed(self) -> bool:
        """Mark this `Forge` closed; False when it already was."""
        with self._close_lock:
            if self._closed:
                return False
            self._closed = True
            return True

    def _release(self) -> None:
        for monitor in self._monitors:
            monitor.stop()
        self._monitors.clear()
        self._router.close()
        for backend in self._router.backends.values():
            close = getattr(backend, "close", None)
            if callable(close):
                close()
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> Forge:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Forge:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Forge is closed; make a new one")

    @property
    def router(self) -> Router:
        """The router (candidate planning and fallback)."""
        return self._router

    def capabilities(
        self, model: str | None = None, needs: ModelRequirements | None = None
    ) -> Capabilities | None:
        """What the route for ``model`` with ``needs`` can do, decided without a network call.

        The `Capabilities` of the first candidate the router would try for a request naming
        ``model`` (None: the configured preferences) that needs ``needs``; None when every
        candidate is dropped (none can meet the needs, or none is usable now). Framework
        packages answer "can this model call tools / honour a JSON schema / how large is its
        context" with it.
        """
        self._check_open()
        request = ChatRequest(messages=[], model=model)
        candidates, _ = self._router.plan(request, needs=needs or ModelRequirements())
        if not candidates:
            return None
        first = candidates[0]
        return first.backend.capabilities(first.model)

    def model_capabilities(self, model: str) -> Capabilities | None:
        """What the model ``model`` pins (``provider:model``, or a bare name for the
        configured provider) can do on the deployment that would serve it first, from the
        capability table and what that backend has learned so far (an Ollama model's
        ``/api/show``, an endpoint's refusals), whether or not it is usable right now (no API
        key yet, circuit open); None when no configured deployment serves it. Unlike
        `capabilities`, never the capabilities of a fallback. No network call."""
        self._check_open()
        pinned = self._router.planner.pinned(model)
        return pinned[2] if pinned is not None else None

    def warm(self, models: Sequence[str] | None = None) -> list[str]:
        """Load the in-process (``huggingface``) models now rather than on first request.

        ``models`` defaults to every configured one (else the embedded model). Returns the names
        loaded; a model that cannot load raises its `ProviderError` (``ModelNotFound`` …).
        """
        self._check_open()
        backend = self._router.backends.get(Provider.HUGGINGFACE)
        warm = getattr(backend, "warm", None)
        if warm is None:
            return []
        return list(warm(list(models) if models is not None else None))

    def stats(self) -> dict[str, Any]:
        """What the router has seen since this `Forge` was made.

        ``models``: per ``provider:model`` requests (attempts), successes, failures by kind,
        latency and TTFT percentiles (ms, over the most recent calls), ``input_tokens``,
        ``output_tokens`` and ``spend_usd``; ``usage``: ``local_tokens``, ``cloud_tokens``,
        ``local_share`` (of all tokens, None before any), ``spend_usd`` and
        ``unpriced_tokens`` (cloud tokens of a model with no price in the ``pricing`` table);
        ``circuits``: each endpoint's breaker state; ``deployments``: per deployment sent to,
        its ``endpoint``, ``in_flight`` attempts, the models ``loading`` (a cold start in
        flight) and ``latency_ms``, the recent latency by model that balancing uses (a moving
        average of the first token of a stream, else the whole answer); ``affinity``: the
        balanced requests prefix affinity placed (``hits``), knew nothing about (``misses``)
        or whose deployment load passed over (``load_overrides``); ``health``: unexpired
        cached health;
        ``backends``: each backend's own ``stats()`` where it has one (local models: load
        time, memory …). `forge_core.prometheus_text` renders it for Prometheus.
        """
        stats = self._router.stats()
        stats["health"] = self._router.health.snapshot()
        backends: dict[str, Any] = {}
        for name, backend in self._router.backends.items():
            own = getattr(backend, "stats", None)
            if callable(own):
                backends[name] = own()
        stats["backends"] = backends
        return stats

    def check_health(self, *, refresh: bool = False) -> dict[str, str]:
        """Each deployment in the fallback order (a kind: each of its deployments), by name:
        ``up``, ``warming`` (a request this `Forge` sent waits there for its model to load),
        ``down`` or ``unknown``.

        Cached results are used while fresh (``routing.health_ttl_seconds``) unless
        ``refresh``; otherwise the backend's own cheap probe runs (never a billed call).
        Candidates cached as down are skipped by the router until the entry expires.
        """
        backends = self._router.backends
        return {
            name: self._router.check_health(backends[name], refresh=refresh).value
            for name in self.config.providers.ordered_names()
            if name in backends
        }

    def start_health_monitor(self, interval_seconds: float = 10.0) -> HealthMonitor:
        """Re-probe every provider's health now and every ``interval_seconds`` in the background.

        The router then skips a provider that went down without a failed attempt, and tries
        one that came back. Call ``stop()`` on the returned monitor (or use it as a context
        manager) to end it; `close` stops it too.
        """
        self._check_open()
        monitor = HealthMonitor(lambda: self.check_health(refresh=True), interval_seconds)
        self._monitors = [kept for kept in self._monitors if kept.running]
        self._monitors.append(monitor)
        return monitor.start()

    def chat(self, messages: MessagesInput | ChatRequest, **params: Any) -> ChatResponse:
        """Route one chat request and return the first successful answer.

        ``params`` are `ChatRequest` fields: ``model``, ``temperature``, ``max_tokens``,
        ``stop``, ``tools``, ``tool_choice``, ``response_format``, ``local_only``.
        """
        self._check_open()
        return self._router.chat(_request(messages, params))

    async def achat(self, messages: MessagesInput | ChatRequest, **params: Any) -> ChatResponse:
        """Async `chat`."""
        self._check_open()
        return await self._router.achat(_request(messages, params))

    def stream(
        self, messages: MessagesInput | ChatRequest, **params: Any
    ) -> Generator[ChatChunk, None, None]:
        """Route a request and stream the answer; the last chunk carries usage and the route."""
        self._check_open()
        return self._router.stream(_request(messages, params))

    def astream(
        self, messages: MessagesInput | ChatRequest, **params: Any
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        self._check_open()
        return self._router.astream(_request(messages, params))

    def embed(self, texts: Sequence[str] | EmbeddingRequest, **params: Any) -> EmbeddingResponse:
        """Route one batch of texts to the first provider that embeds them; one vector per
        text, in order, with the route.

        ``params`` are `EmbeddingRequest` fields: ``model``, ``models``, ``local_only``,
        ``fallback``. Breakers, health, retries and metrics are the ones chat uses, per
        endpoint. Each call routes afresh: to keep one index in one vector space, use
        `Embedder`, which stays on the model that served first.
        """
        self._check_open()
        return self._router.embed(_embedding_request(texts, params))

    async def aembed(
        self, texts: Sequence[str] | EmbeddingRequest, **params: Any
    ) -> EmbeddingResponse:
        """Async `embed`."""
        self._check_open()
        return await self._router.aembed(_embedding_request(texts, params))


def _embedding_request(
    texts: Sequence[str] | EmbeddingRequest, params: Mapping[str, Any]
) -> EmbeddingRequest:
    if isinstance(texts, EmbeddingRequest):
        return texts.model_copy(update=dict(params)) if params else texts
    if isinstance(texts, str):
        raise TypeError("embed takes a list of texts, not one string")
    return EmbeddingRequest(input=list(texts), **params)


def _request(messages: MessagesInput | ChatRequest, params: Mapping[str, Any]) -> ChatRequest:
    if isinstance(messages, ChatRequest) and not params:
        return messages
    unknown = sorted(set(params) - _PARAMETERS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    if isinstance(messages, ChatRequest):
        return messages.model_copy(update=dict(params))
    if isinstance(messages, str):
        conversation = [Message(role="user", content=messages)]
    else:
        conversation = [
            item if isinstance(item, Message) else Message.model_validate(item) for item in messages
        ]
    return ChatRequest(messages=conversation, **params)
