"""Selection and fallback: which candidates to try for a request, in which order, and trying them.

The sync and async paths share every decision (`Router.plan`, `_Route`); only the I/O loops
differ. Per candidate: the circuit breaker admits the call (`_breaker`), tenacity retries it
(`_retry`), and the route records every attempt and drop (`_Route`). Streams fail over
transparently until the first content or tool-call token; after it, `StreamInterrupted`, or
with ``routing.midstream: continue`` the next candidate is asked to carry on.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar

from forge_core._breaker import BreakerRegistry, CircuitBreaker, CircuitState, Ticket
from forge_core._config import ForgeConfig
from forge_core._exceptions import (
    FallbackFailed,
    ForgeError,
    ForgeTimeout,
    MalformedResponse,
    ProviderError,
    StreamInterrupted,
)
from forge_core._health import HealthCache, HealthStatus, ModelDiscovery, endpoint_of
from forge_core._metrics import Metrics
from forge_core._retry import Clock, RetryPolicy, SystemClock
from forge_core._types import (
    Attempt,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Drop,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    ModelId,
    ModelRequirements,
    Provider,
    RouteTrail,
    ToolCall,
    Usage,
)
from forge_core.providers import ChatBackend, read_timeout_for
from forge_core.providers._base import (
    DEFAULT_HEALTH_TIMEOUT,
    AttemptTimeouts,
    EmbeddingBackend,
)

__all__ = ["CONTINUE_PROMPT", "Candidate", "ProviderSelector", "Router", "endpoint_of"]

logger = logging.getLogger("forge.router")

#: What the next candidate is asked after a stream died mid-answer (``midstream: continue``).
CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without "
    "repeating anything already written."
)


@dataclass(frozen=True)
class Candidate:
    """One provider and model the router may call."""

    provider: Provider
    model: str
    backend: ChatBackend

    @property
    def key(self) -> str:
        """``provider:model``, the metrics key."""
        return f"{self.provider.value}:{self.model}"


class Router:
    """Builds the ordered candidate list for a request and tries it until one answers.

    ``clock`` and ``rng`` are injectable so retries, backoff and cooldowns are testable
    without sleeping; ``breakers``, ``metrics`` and ``health`` may be shared between routers.
    """

    def __init__(
        self,
        config: ForgeConfig,
        backends: Mapping[Provider, ChatBackend],
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        breakers: BreakerRegistry | None = None,
        metrics: Metrics | None = None,
        health: HealthCache | None = None,
    ) -> None:
        self._config = config
        self._backends = dict(backends)
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._policy = RetryPolicy.from_config(config.routing)
        self.breakers = breakers or BreakerRegistry.from_config(config.routing, self._clock)
        self.metrics = metrics or Metrics()
        self.health = health or HealthCache(config.routing.health_ttl_seconds, clock=self._clock)
        self.discovery = ModelDiscovery(
            self._backends,
            health=self.health,
            health_check_timeout=DEFAULT_HEALTH_TIMEOUT,
            clock=self._clock,
        )

    @property
    def backends(self) -> dict[Provider, ChatBackend]:
        """The backends this router calls, by provider."""
        return dict(self._backends)

    def breaker_for(self, backend: ChatBackend) -> CircuitBreaker:
        """The circuit breaker of ``backend``'s endpoint."""
        return self.breakers.get(endpoint_of(backend))

    def stats(self) -> dict[str, Any]:
        """Per ``provider:model`` counters and percentiles, and every endpoint's circuit."""
        return {"models": self.metrics.snapshot(), "circuits": self.breakers.snapshot()}

    def check_health(self, backend: ChatBackend, *, refresh: bool = False) -> HealthStatus:
        """``backend``'s endpoint health, from the cache or (``refresh``) its own cheap probe."""
        return self.health.check(
            endpoint_of(backend), backend, DEFAULT_HEALTH_TIMEOUT, refresh=refresh
        )

    # -- selection --------------------------------------------------------------------------

    def plan(
        self,
        request: ChatRequest | EmbeddingRequest,
        *,
        needs: ModelRequirements | None = None,
        preference_order: Sequence[Provider] | None = None,
        fallback_enabled: bool | None = None,
    ) -> tuple[list[Candidate], list[Drop]]:
        """The candidates to try, in order, and the ones dropped before any network call.

        Chat and embedding requests are planned alike (order, pinning, ``local_only``,
        capabilities, open circuits, cached health); an embedding request needs a backend
        that embeds and defaults each candidate to its embedding model. ``needs`` defaults to
        what ``request`` needs; ``preference_order`` and ``fallback_enabled`` default to the
        config's (`ProviderSelector` passes its own).
        """
        prefs = self._config.model_preferences
        fallback = self._config.providers.fallback
        if isinstance(request, EmbeddingRequest):
            pinned = self._pinned(request.model)
            fallback_enabled = request.fallback if fallback_enabled is None else fallback_enabled
        else:
            pinned = self._pinned(request.model or prefs.default_model)

        if preference_order is not None:
            order = list(preference_order)
        else:
            order = list(fallback.order)
            if prefs.default_provider is not None:
                order = [prefs.default_provider] + [p for p in order if p != prefs.default_provider]
            if prefs.local_first:
                order = [p for p in order if p.is_local] + [p for p in order if not p.is_local]
        wanted: list[tuple[Provider, str | None]] = [(p, None) for p in order]
        if pinned is not None:
            wanted = [pinned] + [(p, None) for p in order if p != pinned[0]]
        if not (fallback.enabled if fallback_enabled is None else fallback_enabled):
            wanted = wanted[:1]

        local_only = prefs.local_only if request.local_only is None else request.local_only
        if needs is None:
            needs = (
                _EMBEDDING_NEEDS
                if isinstance(request, EmbeddingRequest)
                else ModelRequirements.of(request)
            )
        candidates: list[Candidate] = []
        drops: list[Drop] = []
        for provider, model in wanted:
            backend = self._backends.get(provider)
            if backend is None:
                drops.append(
                    Drop(
                        provider=provider,
                        model=model,
                        reason="no client for this provider in this forge version",
                    )
                )
                continue
            if needs.embeddings and not isinstance(backend, EmbeddingBackend):
                drops.append(
                    Drop(provider=provider, model=model, reason=f"{provider} has no embeddings API")
                )
                continue
            if isinstance(request, EmbeddingRequest) and isinstance(backend, EmbeddingBackend):
                model = model or request.models.get(provider) or backend.default_embedding_model()
            model = model or backend.default_model()
            reason = self._unusable(backend, provider, model, needs, local_only)
            if reason is not None:
                drops.append(Drop(provider=provider, model=model, reason=reason))
                continue
            candidates.append(Candidate(provider, model, backend))
        return candidates, drops

    def _unusable(
        self,
        backend: ChatBackend,
        provider: Provider,
        model: str,
        needs: ModelRequirements,
        local_only: bool,
    ) -> str | None:
        """Why ``backend`` cannot serve ``model`` now, known without a network call."""
        if local_only and not provider.is_local:
            return "local_only: cloud not allowed"
        unmet = needs.unmet(backend.capabilities(model))
        if unmet:
            return "lacks " + ", ".join(unmet)
        try:
            backend.check_ready(model)
        except ProviderError as exc:
            return str(exc)
        breaker = self.breaker_for(backend)
        if breaker.rejects():
            return _circuit_reason(breaker)
        cached = self.health.cached(endpoint_of(backend))
        if cached is HealthStatus.DOWN:
            return "health check: down (cached)"
        return None

    def _pinned(self, text: str | None) -> tuple[Provider, str | None] | None:
        """The provider and model a request names, if it names one."""
        if not text:
            return None
        model_id = ModelId.parse(text)
        if model_id.provider is not None:
            return model_id.provider, model_id.model
        bare = model_id.model or ""
        local = self._config.providers.local
        if bare in local.ollama.preferred_models:
            return Provider.OLLAMA, bare
        if any(model.name == bare for model in local.huggingface.models):
            return Provider.HUGGINGFACE, bare
        prefs = self._config.model_preferences
        order = self._config.providers.fallback.order
        provider = prefs.default_provider or (order[0] if order else None)
        return (provider, bare) if provider is not None else None

    def _limits(self, provider: Provider) -> tuple[float, float]:
        """The first-token and idle limits for ``provider``."""
        routing = self._config.routing
        default = read_timeout_for(self._config, provider)
        return (
            routing.first_token_timeout_seconds or default,
            routing.idle_timeout_seconds or default,
        )

    # -- chat -------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> ChatResponse:
        """The first successful answer among the candidates."""
        return self._call(
            _Route(self, request),
            lambda candidate, timeouts: candidate.backend.chat(request, candidate.model, timeouts),
        )

    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Async `chat`; the first-token limit is enforced here, at its limit."""
        return await self._acall(
            _Route(self, request),
            lambda candidate, timeouts: candidate.backend.achat(request, candidate.model, timeouts),
        )

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Vectors from the first candidate that embeds, with the same retries, breakers,
        health and metrics per endpoint as chat."""
        texts = request.input
        return self._call(
            _Route(self, request),
            lambda candidate, timeouts: _embedder(candidate).embed(
                texts, candidate.model, timeouts
            ),
        )

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Async `embed`."""
        texts = request.input
        return await self._acall(
            _Route(self, request),
            lambda candidate, timeouts: _embedder(candidate).aembed(
                texts, candidate.model, timeouts
            ),
        )

    def _call(self, route: _Route, call: Callable[[Candidate, AttemptTimeouts], _R]) -> _R:
        """``call`` on each candidate in turn (retried, through its breaker) until one answers."""
        for index, candidate in enumerate(route.candidates):
            try:
                for attempt in route.retrying(index):
                    with attempt:
                        ticket = route.admit(candidate)
                        started = self._clock.monotonic()
                        try:
                            response = call(candidate, route.timeouts(candidate, stream=False))
                        except ProviderError as exc:
                            route.fail(candidate, ticket, exc, started)
                        except BaseException:
                            route.abandoned(candidate, ticket)
                            raise
                        return route.answered(candidate, ticket, response, started)
            except (ProviderError, _Skip):
                continue
        raise route.exhausted()

    async def _acall(
        self, route: _Route, call: Callable[[Candidate, AttemptTimeouts], Awaitable[_R]]
    ) -> _R:
        """Async `_call`; the first-token limit is enforced here, at its limit."""
        for index, candidate in enumerate(route.candidates):
            try:
                async for attempt in route.aretrying(index):
                    with attempt:
                        ticket = route.admit(candidate)
                        started = self._clock.monotonic()
                        limit, phase = route.first_token_limit(candidate, started)
                        timeouts = route.timeouts(candidate, stream=False, backstop=True)
                        try:
                            try:
                                async with asyncio.timeout(limit):
                                    response = await call(candidate, timeouts)
                            except TimeoutError:
                                raise route.timeout(candidate, phase, limit) from None
                        except ProviderError as exc:
                            route.fail(candidate, ticket, exc, started)
                        except BaseException:
                            route.abandoned(candidate, ticket)
                            raise
                        return route.answered(candidate, ticket, response, started)
            except (ProviderError, _Skip):
                continue
        raise route.exhausted()

    # -- streams ----------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Chunks from the first candidate that produces any; failover only before the first.

        Runs `astream` on forge's background event loop: a blocked socket read cannot be
        interrupted from a sync generator, but a task can be cancelled, so the first-token and
        idle limits fire at their limit, and closing this generator closes the upstream
        connection at once.
        """
        # One task on the background loop drains the stream into a queue: a single hand-off
        # per chunk, instead of a round trip through the loop for each one.
        handoff: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        drained = threading.Event()

        async def drain() -> None:
            try:
                async for chunk in self.astream(request):
                    handoff.put(("chunk", chunk))
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                handoff.put(("error", exc))
            else:
                handoff.put(("end", None))
            finally:
                drained.set()

        task = asyncio.run_coroutine_threadsafe(drain(), _background_loop())
        try:
            while True:
                kind, item = handoff.get()
                if kind == "chunk":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    return
        finally:
            if not drained.is_set():
                # The consumer stopped early: cancel the task (which closes the upstream
                # connection) and wait for that cleanup, bounded.
                task.cancel()
                drained.wait(timeout=_CLOSE_WAIT_SECONDS)

    async def astream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`; first-token and idle limits fire at their limit."""
        route = _Route(self, request)
        said = _Said()
        asked = request
        for index, candidate in enumerate(route.candidates):
            try:
                opened = await self._aopen(route, index, asked)
            except (ProviderError, _Skip):
                continue
            state = _StreamState(said)
            try:
                for chunk in opened.buffered:
                    for out in state.take(chunk, route):
                        yield out
                if not opened.done:
                    _, idle = self._limits(candidate.provider)
                    while True:
                        limit = min(idle, route.remaining())
                        try:
                            async with asyncio.timeout(limit):
                                chunk = await anext(opened.chunks)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            phase = "total" if limit < idle else "idle"
                            raise route.timeout(candidate, phase, limit) from None
                        for out in state.take(chunk, route):
                            yield out
                for out in state.flush():
                    yield out
                route.check_finished(candidate, state)
            except ProviderError as exc:
                route.failed(candidate, opened.ticket, exc, opened.started, streamed=True)
                if route.may_continue(index, said):
                    asked = _continuation(request, said.text)
                    continue
                raise route.interrupted(candidate, said, exc) from exc
            except BaseException:
                route.abandoned(candidate, opened.ticket)
                raise
            finally:
                await opened.chunks.aclose()
            yield route.stream_finished(candidate, opened, state)
            return
        raise route.exhausted(said)

    async def _aopen(
        self, route: _Route, index: int, request: ChatRequest
    ) -> _Opened[AsyncGenerator[ChatChunk, None]]:
        candidate = route.candidates[index]
        async for attempt in route.aretrying(index):
            with attempt:
                ticket = route.admit(candidate)
                started = self._clock.monotonic()
                chunks: AsyncGenerator[ChatChunk, None] | None = None
                try:
                    chunks = candidate.backend.astream(
                        request,
                        candidate.model,
                        route.timeouts(candidate, stream=True, backstop=True),
                    )
                    opened = _Opened(chunks, ticket, started)
                    limit, phase = route.first_token_limit(candidate, started)
                    try:
                        async with asyncio.timeout(limit):
                            async for chunk in chunks:
                                opened.buffered.append(chunk)
                                if _has_token(chunk):
                                    route.first_token(opened)
                                    return opened
                    except TimeoutError:
                        raise route.timeout(candidate, phase, limit) from None
                    opened.done = True
                    return opened
                except ProviderError as exc:
                    if chunks is not None:
                        await chunks.aclose()
                    route.fail(candidate, ticket, exc, started)
                except BaseException:
                    if chunks is not None:
                        await chunks.aclose()
                    route.abandoned(candidate, ticket)
                    raise
        raise AssertionError("tenacity returns or raises")  # pragma: no cover


#: How long closing a sync stream early waits for the upstream connection to be closed.
_CLOSE_WAIT_SECONDS = 10.0


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    """The event loop (in a daemon thread) that drives sync streams; started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="forge-sync-streams", daemon=True
            ).start()
            _loop = loop
        return _loop


#: How much later than the router's own limits an async provider call gives up by itself.
_BACKSTOP_GRACE = 0.25
_EMBEDDING_NEEDS = ModelRequirements(embeddings=True)
_R = TypeVar("_R", ChatResponse, EmbeddingResponse)


def _embedder(candidate: Candidate) -> EmbeddingBackend:
    """``candidate``'s backend as an `EmbeddingBackend` (the planner kept only those)."""
    backend = candidate.backend
    assert isinstance(backend, EmbeddingBackend)
    return backend


def _has_token(chunk: ChatChunk) -> bool:
    return bool(chunk.content or chunk.tool_call_deltas)


def _circuit_reason(breaker: CircuitBreaker) -> str:
    if breaker.state is CircuitState.HALF_OPEN:
        return f"circuit half-open at {breaker.name}: a probe is already in flight"
    return f"circuit open at {breaker.name} (retry in {breaker.retry_in():.1f}s)"


def _continuation(request: ChatRequest, partial: str) -> ChatRequest:
    messages = [
        *request.messages,
        Message(role="assistant", content=partial),
        Message(role="user", content=CONTINUE_PROMPT),
    ]
    return request.model_copy(update={"messages": messages})


class ProviderSelector:
    """``ProviderSelector``: which candidate serves given model requirements.

    A view over a `Router`'s selection (capabilities, ``local_only``, open circuits and cached
    health, all without a network call), with its own ``preference_order`` and
    ``fallback_enabled``. ``health_check_timeout`` bounds `check_health` probes.
    """

    def __init__(
        self,
        router: Router,
        preference_order: Sequence[Provider | str] | None = None,
        fallback_enabled: bool = True,
        health_check_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    ) -> None:
        self._router = router
        self.preference_order = (
            [Provider(p) for p in preference_order] if preference_order is not None else None
        )
        self.fallback_enabled = fallback_enabled
        self.health_check_timeout = health_check_timeout

    def candidates(
        self, model_requirements: ModelRequirements | None = None, *, local_only: bool | None = None
    ) -> tuple[list[Candidate], list[Drop]]:
        """Every usable candidate in order, and every dropped one with its reason."""
        return self._router.plan(
            ChatRequest(messages=[], local_only=local_only),
            needs=model_requirements or ModelRequirements(),
            preference_order=self.preference_order,
            fallback_enabled=self.fallback_enabled,
        )

    def select_provider(
        self, model_requirements: ModelRequirements | None = None, *, local_only: bool | None = None
    ) -> Candidate | None:
        """The first usable candidate, or None when every one is dropped."""
        usable, _ = self.candidates(model_requirements, local_only=local_only)
        return usable[0] if usable else None

    def check_health(self) -> dict[Provider, HealthStatus]:
        """Health of each preferred provider's endpoint (cached, else a cheap probe)."""
        backends = self._router.backends
        order = self.preference_order or list(backends)
        return {
            provider: self._router.health.check(
                endpoint_of(backends[provider]), backends[provider], self.health_check_timeout
            )
            for provider in order
            if provider in backends
        }


class _Skip(Exception):
    """A candidate was not called (circuit open, deadline passed); its drop is recorded."""


_T = TypeVar("_T")


@dataclass
class _Opened(Generic[_T]):
    """A stream that has produced its first token (or ended without one)."""

    chunks: _T
    ticket: Ticket
    started: float
    buffered: list[ChatChunk] = field(default_factory=list)
    done: bool = False
    ttft_ms: float | None = None


class _Said:
    """Everything yielded to the caller so far, across candidates (for ``midstream``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.tool_calls = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def started(self) -> bool:
        return bool(self.parts) or self.tool_calls


class _StreamState:
    """One candidate's stream: what it said, its finish reason and usage.

    A continuation that starts by repeating what was already said has the repeat cut, so the
    caller never sees a duplicated answer.
    """

    def __init__(self, said: _Said) -> None:
        self._said = said
        self._repeat_of = said.text
        self._held = ""
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.tool_calls: list[ToolCall] = []
        self.model: str | None = None
        self.provider: Provider | None = None
        self.spoke = False

    def take(self, chunk: ChatChunk, route: _Route) -> Iterator[ChatChunk]:
        """Record ``chunk``; yield what to pass on (content and tool deltas only)."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.tool_calls:
            # The provider's finish chunk carries the streamed tool calls assembled.
            self.tool_calls = list(chunk.tool_calls)
        self.model = chunk.model
        self.provider = chunk.provider
        if not _has_token(chunk):
            return
        self.spoke = True
        content = chunk.content
        if self._repeat_of and content:
            self._held += content
            if self._repeat_of.startswith(self._held) and len(self._held) < len(self._repeat_of):
                return
            content = self._release()
        if chunk.tool_call_deltas:
            self._said.tool_calls = True
        if content:
            self._said.parts.append(content)
        elif not chunk.tool_call_deltas:
            return
        yield chunk.model_copy(
            update={"content": content, "usage": None, "finish_reason": None, "route": None}
        )

    def _release(self) -> str:
        held, repeat = self._held, self._repeat_of
        self._held = self._repeat_of = ""
        return held[len(repeat) :] if held.startswith(repeat) else held

    def flush(self) -> Iterator[ChatChunk]:
        """Whatever a continuation still holds back when its stream ends."""
        if self._held and self.provider is not None:
            content = self._release()
            if content:
                self._said.parts.append(content)
                yield ChatChunk(content=content, provider=self.provider, model=self.model or "")


class _Route:
    """The bookkeeping of one routed request: attempts, drops, timings, the final errors."""

    def __init__(self, router: Router, request: ChatRequest | EmbeddingRequest) -> None:
        self.router = router
        self.clock = router._clock
        self.candidates, drops = router.plan(request)
        self.trail = RouteTrail(drops=drops)
        self._started = self.clock.monotonic()
        self._deadline = self._started + router._config.routing.total_timeout_seconds
        self._last_provider: Provider | None = None

    def _elapsed_ms(self, since: float) -> float:
        return (self.clock.monotonic() - since) * 1000.0

    def remaining(self) -> float:
        """Seconds left before the request's overall deadline."""
        return self._deadline - self.clock.monotonic()

    # -- retrying ---------------------------------------------------------------------------

    def _retry_args(self, index: int) -> dict[str, Any]:
        breaker = self.router.breaker_for(self.candidates[index].backend)
        return {
            "clock": self.clock,
            "deadline": self._deadline,
            "has_fallback": index < len(self.candidates) - 1,
            "rng": self.router._rng,
            "circuit_allows": lambda: breaker.state is not CircuitState.OPEN,
        }

    def retrying(self, index: int) -> Any:
        """tenacity's sync retry loop for candidate ``index``."""
        return self.router._policy.retrying(**self._retry_args(index))

    def aretrying(self, index: int) -> Any:
        """tenacity's async retry loop for candidate ``index``."""
        return self.router._policy.aretrying(**self._retry_args(index))

    def admit(self, candidate: Candidate) -> Ticket:
        """The circuit's permission for one attempt; `_Skip` (and a drop) when refused."""
        reason = None
        ticket = None
        if self.remaining() <= 0:
            reason = "total deadline passed before this candidate"
        else:
            breaker = self.router.breaker_for(candidate.backend)
            ticket = breaker.admit()
            if ticket is None:
                reason = _circuit_reason(breaker)
        if ticket is None:
            self.trail.drops.append(
                Drop(provider=candidate.provider, model=candidate.model, reason=str(reason))
            )
            raise _Skip(reason)
        return ticket

    # -- deadlines --------------------------------------------------------------------------

    def timeouts(
        self, candidate: Candidate, *, stream: bool, backstop: bool = False
    ) -> AttemptTimeouts:
        """The provider's deadlines for one attempt (on the real monotonic clock).

        With ``backstop`` the router enforces the limits itself (async) and the provider's
        are a little longer, so the trail always names the limit that was meant to fire.
        """
        first, idle = self.router._limits(candidate.provider)
        grace = _BACKSTOP_GRACE if backstop else 0.0
        return AttemptTimeouts(
            connect=self.router._config.routing.connect_timeout_seconds,
            read=(max(first, idle) if stream else first) + grace,
            total_deadline=time.monotonic() + max(self.remaining(), 0.0) + grace,
        )

    def first_token_limit(self, candidate: Candidate, started: float) -> tuple[float, str]:
        """Seconds the first token may take from now, and which limit that is."""
        first, _ = self.router._limits(candidate.provider)
        left = first - (self.clock.monotonic() - started)
        remaining = self.remaining()
        return (left, "first_token") if left <= remaining else (remaining, "total")

    def timeout(self, candidate: Candidate, phase: str, seconds: float) -> ForgeTimeout:
        """The error for a limit the router itself enforced."""
        what = {"first_token": "no first token", "idle": "no chunk", "total": "total deadline"}
        first, idle = self.router._limits(candidate.provider)
        total = self.router._config.routing.total_timeout_seconds
        seconds = {"first_token": first, "idle": idle, "total": total}.get(phase, seconds)
        return ForgeTimeout(
            f"{candidate.provider.value}:{candidate.model}: {phase.replace('_', '-')} timeout: "
            f"{what.get(phase, phase)} within {max(seconds, 0.0):.3g}s",
            timeout_seconds=seconds,
            phase=phase,
            provider=candidate.provider.value,
            model=candidate.model,
        )

    def _label(self, exc: ProviderError, candidate: Candidate, streamed: bool) -> ProviderError:
        """A provider's read timeout, named after the limit it stood for."""
        if not isinstance(exc, ForgeTimeout) or exc.phase is not None:
            return exc
        phase = "total" if self.remaining() <= 0 else ("idle" if streamed else "first_token")
        labelled = ForgeTimeout(
            f"{phase.replace('_', '-')} timeout: {exc}",
            timeout_seconds=exc.timeout_seconds,
            phase=phase,
            provider=exc.provider,
            model=exc.model,
            status_code=exc.status_code,
        )
        return labelled

    # -- outcomes ---------------------------------------------------------------------------

    def failed(
        self,
        candidate: Candidate,
        ticket: Ticket,
        exc: ProviderError,
        started: float,
        *,
        streamed: bool = False,
    ) -> ProviderError:
        """Record a failed attempt everywhere; returns the error to raise."""
        exc = self._label(exc, candidate, streamed)
        elapsed = self._elapsed_ms(started)
        logger.info("forge: %s failed: %s", candidate.key, exc)
        self.trail.attempts.append(
            Attempt(
                provider=candidate.provider,
                model=candidate.model,
                ok=False,
                error_kind=exc.kind,
                message=str(exc),
                elapsed_ms=elapsed,
            )
        )
        self.router.metrics.record(candidate.key, ok=False, kind=exc.kind)
        breaker = self.router.breaker_for(candidate.backend)
        if exc.retryable:
            trip = (
                isinstance(exc, ForgeTimeout)
                and self.router._config.routing.breaker_open_on_timeout
            )
            breaker.record_failure(ticket, trip=trip)
        else:
            # Auth, bad request, unknown model: the endpoint answered, so it is up.
            breaker.record_success(ticket)
        return exc

    def fail(
        self, candidate: Candidate, ticket: Ticket, exc: ProviderError, started: float
    ) -> NoReturn:
        """`failed`, then raise the (possibly relabelled) error, chained to the original."""
        error = self.failed(candidate, ticket, exc, started)
        if error is exc:
            raise exc
        raise error from exc

    def abandoned(self, candidate: Candidate, ticket: Ticket) -> None:
        """The caller cancelled the attempt: it proves nothing about the endpoint."""
        self.router.breaker_for(candidate.backend).release(ticket)

    def first_token(self, opened: _Opened[Any]) -> None:
        """Record the time to the first content token."""
        if self.trail.ttft_ms is None:
            self.trail.ttft_ms = self._elapsed_ms(self._started)
        opened.ttft_ms = self._elapsed_ms(opened.started)

    def _succeeded(
        self,
        candidate: Candidate,
        ticket: Ticket,
        model: str,
        started: float,
        ttft_ms: float | None,
    ) -> RouteTrail:
        elapsed = self._elapsed_ms(started)
        self.trail.attempts.append(
            Attempt(provider=candidate.provider, model=candidate.model, ok=True, elapsed_ms=elapsed)
        )
        self.router.metrics.record(
            candidate.key,
            ok=True,
            latency_ms=elapsed,
            ttft_ms=ttft_ms if ttft_ms is not None else elapsed,
        )
        self.router.breaker_for(candidate.backend).record_success(ticket)
        self.router.health.mark(endpoint_of(candidate.backend), HealthStatus.UP)
        self.trail.provider = candidate.provider
        self.trail.model = model
        self.trail.total_ms = self._elapsed_ms(self._started)
        return self.trail

    def answered(self, candidate: Candidate, ticket: Ticket, response: _R, started: float) -> _R:
        """The response, stamped with who served it and the route."""
        trail = self._succeeded(candidate, ticket, response.model, started, None)
        if trail.ttft_ms is None:
            trail.ttft_ms = trail.total_ms
        return response.model_copy(update={"provider": candidate.provider, "route": trail})

    def stream_finished(
        self, candidate: Candidate, opened: _Opened[Any], state: _StreamState
    ) -> ChatChunk:
        """The last chunk of a successful stream: finish reason, usage and the route."""
        model = state.model or candidate.model
        trail = self._succeeded(candidate, opened.ticket, model, opened.started, opened.ttft_ms)
        return ChatChunk(
            content="",
            finish_reason=state.finish_reason or "stop",
            usage=state.usage,
            tool_calls=state.tool_calls,
            provider=candidate.provider,
            model=model,
            route=trail,
        )

    def check_finished(self, candidate: Candidate, state: _StreamState) -> None:
        """A stream that said something must end with a finish reason; else it was cut."""
        if state.spoke and state.finish_reason is None:
            raise MalformedResponse(
                f"{candidate.key}: the stream ended without a finish reason (truncated)",
                provider=candidate.provider.value,
                model=candidate.model,
            )

    def may_continue(self, index: int, said: _Said) -> bool:
        """Whether ``midstream: continue`` applies: text only, and a candidate left to ask."""
        return (
            self.router._config.routing.midstream == "continue"
            and not said.tool_calls
            and index < len(self.candidates) - 1
        )

    def interrupted(
        self, candidate: Candidate, said: _Said, exc: ProviderError
    ) -> StreamInterrupted:
        """The error for a stream that failed after content was yielded."""
        self.trail.total_ms = self._elapsed_ms(self._started)
        partial = said.text
        return StreamInterrupted(
            f"{candidate.key} failed mid-stream after {len(partial)} characters: {exc}",
            partial=partial,
            provider=candidate.provider.value,
            model=candidate.model,
            cause=exc,
            route=self.trail,
        )

    def exhausted(self, said: _Said | None = None) -> ForgeError:
        """The error when no candidate answered (or none could continue a started stream)."""
        self.trail.total_ms = self._elapsed_ms(self._started)
        if not self.trail.attempts and not self.trail.drops:
            summary = "  no provider is configured"
        else:
            summary = self.trail.describe()
        if said is not None and said.started:
            last = self.trail.attempts[-1]
            return StreamInterrupted(
                f"no candidate could continue the stream after {len(said.text)} characters:\n"
                f"{summary}",
                partial=said.text,
                provider=last.provider.value,
                model=last.model,
                route=self.trail,
            )
        timed_out = any(a.error_kind == ForgeTimeout.kind for a in self.trail.attempts)
        headline = "every provider failed" + (" (some timed out)" if timed_out else "")
        return FallbackFailed(f"{headline}:\n{summary}", route=self.trail)
