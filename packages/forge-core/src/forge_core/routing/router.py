"""The router: tries a request's candidates, in the planned order, until one answers.

Decisions live in small modules, once for every path: `_planning` (which candidates, in which
order), `_route` (one request's attempts, deadlines and outcomes), `_streaming` (what a stream
has said; the sync bridge), `_retry` and `_breaker`. Here are only the loops: a call
(chat or embeddings, sync and async) and a stream. Streams fail over transparently until the
first content or tool-call token; after it, `StreamInterrupted`, or with
``routing.midstream: continue`` the next candidate is asked to carry on.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from contextlib import aclosing
from typing import Any

from forge_core.backends.base import (
    DEFAULT_HEALTH_TIMEOUT,
    AttemptTimeouts,
    ChatBackend,
    EmbeddingBackend,
)
from forge_core.config.schema import ForgeConfig
from forge_core.errors import ProviderError
from forge_core.observability.metrics import Metrics
from forge_core.observability.telemetry import Telemetry
from forge_core.routing.affinity import AffinityIndex
from forge_core.routing.breaker import BreakerRegistry, CircuitBreaker
from forge_core.routing.budget import RateBudgets
from forge_core.routing.context import RoutingContext
from forge_core.routing.health import HealthCache, HealthStatus, ModelDiscovery, endpoint_of
from forge_core.routing.limits import DeploymentLimits
from forge_core.routing.load import DeploymentLoad, ResidentModels
from forge_core.routing.planning.candidates import Candidate
from forge_core.routing.planning.planner import Planner
from forge_core.routing.retry import Clock, RetryPolicy, SystemClock
from forge_core.routing.route import CandidateSkipped, R, Route
from forge_core.routing.streaming import (
    OpenedStream,
    StreamState,
    YieldedSoFar,
    continuation,
    has_token,
    in_background,
)
from forge_core.state import release_shared_state, shared_state_for
from forge_core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)

__all__ = ["Router"]


class Router:
    """Builds the ordered candidate list for a request and tries it until one answers.

    ``clock`` and ``rng`` are injectable so retries, backoff and cooldowns are testable
    without sleeping; ``breakers``, ``metrics``, ``health``, ``load`` (attempts in flight
    and recent latency per endpoint) and ``budgets`` (rate-budget logs) may be shared between
    routers. They are handed to each request's `Route` once, at construction (`RoutingContext`).
    """

    def __init__(
        self,
        config: ForgeConfig,
        backends: Mapping[str, ChatBackend],
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        breakers: BreakerRegistry | None = None,
        metrics: Metrics | None = None,
        health: HealthCache | None = None,
        load: DeploymentLoad | None = None,
        budgets: RateBudgets | None = None,
    ) -> None:
        self.config = config
        self._backends = dict(backends)
        unknown = [name for name in self._backends if name not in config.providers.deployments]
        if unknown:
            raise ValueError(f"backends {unknown} are not deployments of the config")
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.retry_policy = RetryPolicy.from_config(config.routing)
        #: The fleet's shared routing state (``routing.state``), None with memory state.
        self.shared = shared_state_for(config.routing.state, holder=self)
        if self.shared is not None:
            for backend in self._backends.values():
                share = getattr(backend, "share_lessons", None)
                if share is not None:
                    share(self.shared, endpoint_of(backend))
        self.breakers = breakers or BreakerRegistry.from_config(
            config.routing, self.clock, shared=self.shared
        )
        self.metrics = metrics or Metrics()
        self.health = health or HealthCache(
            config.routing.health_ttl_seconds, clock=self.clock, shared=self.shared
        )
        self.discovery = ModelDiscovery(
            self._backends,
            health=self.health,
            health_check_timeout=DEFAULT_HEALTH_TIMEOUT,
            clock=self.clock,
        )
        #: Requests and tokens sent per deployment and key, against ``rpm``/``tpm``.
        self.budgets = budgets or RateBudgets(clock=self.clock, shared=self.shared)
        #: Per deployment: time limits, cold-start allowance, rate budget.
        self.limits = DeploymentLimits(config, self._backends)
        self._owns_load = load is None
        #: Attempts in flight and recent latency per endpoint (`DeploymentLoad`).
        self.load = load or DeploymentLoad(shared=self.shared if _balances(config) else None)
        #: What each Ollama host has loaded (``/api/ps``, cached briefly).
        self.resident = ResidentModels(clock=self.clock)
        #: Which deployment served which prompts, for prefix affinity (``routing.affinity``).
        self.affinity = AffinityIndex(
            mode=config.routing.affinity,
            imbalance=config.routing.affinity_imbalance,
            ttl=config.routing.affinity_ttl_seconds,
            count=self.metrics.affinity,
            clock=self.clock.monotonic,
            shared=self.shared if _balances(config) else None,
        )
        self.planner = Planner(
            config,
            self._backends,
            self.breakers,
            self.health,
            self.clock,
            load=self.load,
            resident=self.resident,
            affinity=self.affinity,
        )
        #: The candidates to try for a request, in order, and the ones dropped before any
        #: network call (`Planner.plan`).
        self.plan = self.planner.plan
        #: Prices answers and, when enabled, traces each request (`_telemetry`).
        self.telemetry = Telemetry(config, self.metrics, self._backends)
        #: What each request's `Route` uses of this router.
        self.context = RoutingContext(
            routing=config.routing,
            clock=self.clock,
            rng=self.rng,
            retry_policy=self.retry_policy,
            planner=self.planner,
            limits=self.limits,
            health=self.health,
            load=self.load,
            resident=self.resident,
            budgets=self.budgets,
            metrics=self.metrics,
            telemetry=self.telemetry,
            affinity=self.affinity,
        )

    def close(self) -> None:
        """Give up this router's part of the fleet's shared state: its load is no longer
        published, and the last router of the process using the store closes it
        (`forge_core.state.release_shared_state`). The backends are their owner's to close."""
        if self._owns_load:
            self.load.close()
        self.affinity.close()
        if self.shared is not None:
            release_shared_state(self.shared, self)

    @property
    def backends(self) -> dict[str, ChatBackend]:
        """The backends this router calls, by deployment name (`Provider` values for the
        default deployments)."""
        return dict(self._backends)

    def breaker_for(self, backend: ChatBackend) -> CircuitBreaker:
        """The circuit breaker of ``backend``'s endpoint."""
        return self.breakers.get(endpoint_of(backend))

    def stats(self) -> dict[str, Any]:
        """Per ``provider:model`` counters and percentiles, every endpoint's circuit (with shared
        state, every endpoint the fleet knows, and ``state``: where it is and whether it
        answers), the tokens and spend (``usage``: local and cloud tokens, the local share,
        USD), and per deployment the attempts in flight, the models loading and the recent
        latency; ``affinity``: requests whose balanced deployment affinity chose (``hits``),
        had nothing to say about (``misses``) or whose holder load passed over
        (``load_overrides``)."""
        stats: dict[str, Any] = {
            "models": self.metrics.snapshot(),
            "circuits": self.breakers.snapshot(),
            "usage": self.metrics.usage(),
            "deployments": self.deployment_load(),
            "affinity": self.metrics.affinity_counts(),
        }
        budgets = self.budget_view()
        if budgets:
            stats["budgets"] = budgets
        if self.shared is not None:
            stats["state"] = {"backend": "redis", "url": self.shared.url}
            stats["state"]["available"] = self.shared.available()
        return stats

    def deployment_load(self) -> dict[str, dict[str, Any]]:
        """Each deployment this router has sent attempts to: its ``endpoint``, ``in_flight``
        attempts, the models ``loading`` (a cold start in flight) and ``latency_ms``, the
        recent latency by model (first token of a stream, else the whole answer); with shared
        state, ``fleet_in_flight``, every process's attempts in flight there."""
        load = self.load.snapshot()
        view = {
            name: {"endpoint": endpoint, **load[endpoint]}
            for name, backend in self._backends.items()
            if (endpoint := endpoint_of(backend)) in load
        }
        if self.shared is not None:
            # With shared state, every deployment, with what the whole fleet has in flight.
            idle = {"in_flight": 0, "loading": [], "latency_ms": {}}
            for name, backend in self._backends.items():
                endpoint = endpoint_of(backend)
                row = view.setdefault(name, {"endpoint": endpoint, **idle})
                row["fleet_in_flight"] = self.load.in_flight(endpoint)
        return view

    def check_health(
        self,
        backend: ChatBackend,
        *,
        refresh: bool = False,
        timeout: float = DEFAULT_HEALTH_TIMEOUT,
    ) -> HealthStatus:
        """``backend``'s endpoint health, from the cache or (``refresh``) its own cheap probe
        (bounded by ``timeout``); ``warming`` while an attempt of this router waits there for
        a model to load."""
        endpoint = endpoint_of(backend)
        status = self.health.check(endpoint, backend, timeout, refresh=refresh)
        if status is HealthStatus.UP and self.load.loading(endpoint):
            return HealthStatus.WARMING
        return status

    def budget_view(self) -> dict[str, dict[str, Any]]:
        """Each deployment with a rate budget: its limits, what was sent in the window (the
        fleet's with shared state) and what is left."""
        used = self.budgets.snapshot()
        view: dict[str, dict[str, Any]] = {}
        for name in self._backends:
            found = self.limits.budget_of(name)
            if found is None:
                continue
            key, budget = found
            sent = used.get(key, {"requests": 0, "tokens": 0})
            view[name] = {
                "rpm": budget.rpm,
                "tpm": budget.tpm,
                "requests_in_window": sent["requests"],
                "tokens_in_window": sent["tokens"],
                "requests_left": None
                if budget.rpm is None
                else max(budget.rpm - sent["requests"], 0),
                "tokens_left": None if budget.tpm is None else max(budget.tpm - sent["tokens"], 0),
            }
        return view

    # -- chat -------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> ChatResponse:
        """The first successful answer among the candidates."""
        return self._call(
            Route(self.context, request),
            lambda candidate, timeouts: candidate.backend.chat(request, candidate.model, timeouts),
        )

    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Async `chat`; the first-token limit is enforced here, at its limit."""
        needs = await self.planner.aready(request)
        return await self._acall(
            Route(self.context, request, needs=needs),
            lambda candidate, timeouts: candidate.backend.achat(request, candidate.model, timeouts),
        )

    def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Vectors from the first candidate that embeds, with the same retries, breakers,
        health and metrics per endpoint as chat."""
        texts = request.input
        return self._call(
            Route(self.context, request),
            lambda candidate, timeouts: _embedder(candidate).embed(
                texts, candidate.model, timeouts
            ),
        )

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Async `embed`."""
        texts = request.input
        await self.planner.aready(request)
        return await self._acall(
            Route(self.context, request),
            lambda candidate, timeouts: _embedder(candidate).aembed(
                texts, candidate.model, timeouts
            ),
        )

    def _call(self, route: Route, call: Callable[[Candidate, AttemptTimeouts], R]) -> R:
        """``call`` on each candidate in turn (retried, through its breaker) until one answers;
        when every one left was over its rate budget, again once the first budget frees."""
        while True:
            for index, candidate in enumerate(route.candidates):
                try:
                    for attempt in route.attempts(index):
                        with attempt:
                            ticket = route.admit(candidate)
                            started = self.clock.monotonic()
                            try:
                                response = call(candidate, route.timeouts(candidate, stream=False))
                            except ProviderError as exc:
                                route.fail(candidate, ticket, exc, started)
                            except BaseException:
                                route.abandoned(candidate, ticket)
                                raise
                            return route.answered(candidate, ticket, response, started)
                except (ProviderError, CandidateSkipped):
                    continue
            pause = route.budget_pause()
            if pause is None:
                raise route.exhausted()
            self.clock.sleep(pause)

    async def _acall(
        self, route: Route, call: Callable[[Candidate, AttemptTimeouts], Awaitable[R]]
    ) -> R:
        """Async `_call`; the first-token limit is enforced here, at its limit."""
        while True:
            for index, candidate in enumerate(route.candidates):
                try:
                    # Closed here, not left to the loop's finalizer: a task per request, and
                    # one the loop never runs when it is closed right after (issue #30).
                    async with aclosing(route.aattempts(index)) as attempts:
                        async for attempt in attempts:
                            with attempt:
                                ticket = route.admit(candidate)
                                started = self.clock.monotonic()
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
                except (ProviderError, CandidateSkipped):
                    continue
            pause = route.budget_pause()
            if pause is None:
                raise route.exhausted()
            await self.clock.asleep(pause)

    # -- streams ----------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Chunks from the first candidate that produces any; failover only before the first.

        Runs `astream` on forge's background event loop: a blocked socket read cannot be
        interrupted from a sync generator, but a task can be cancelled, so the first-token and
        idle limits fire at their limit, and closing this generator closes the upstream
        connection at once. The caller's OpenTelemetry context goes along, so the request's
        span is a child of the caller's.
        """
        return in_background(self.astream(request, otel_context=self.telemetry.context()))

    async def astream(
        self, request: ChatRequest, *, otel_context: Any = None
    ) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`; first-token and idle limits fire at their limit.

        ``otel_context``: the OpenTelemetry context the request's span is a child of (None:
        the current one).
        """
        needs = await self.planner.aready(request)
        route = Route(self.context, request, otel_context=otel_context, needs=needs)
        said = YieldedSoFar()
        asked = request
        while True:
            for index, candidate in enumerate(route.candidates):
                try:
                    opened = await self._aopen(route, index, asked)
                except (ProviderError, CandidateSkipped):
                    continue
                state = StreamState(said)
                try:
                    for chunk in opened.buffered:
                        for out in state.take(chunk):
                            yield out
                    if not opened.done:
                        _, idle = self.limits.limits(candidate.deployment)
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
                            for out in state.take(chunk):
                                yield out
                    for out in state.flush():
                        yield out
                    route.check_finished(candidate, state)
                except ProviderError as exc:
                    route.failed(candidate, opened.ticket, exc, opened.started, streamed=True)
                    if route.may_continue(index, said):
                        asked = continuation(request, said.text)
                        continue
                    raise route.interrupted(candidate, said, exc) from exc
                except BaseException:
                    route.abandoned(candidate, opened.ticket)
                    raise
                finally:
                    await opened.chunks.aclose()
                yield route.stream_finished(candidate, opened, state)
                return
            pause = route.budget_pause()
            if pause is None or said.started:
                raise route.exhausted(said)
            await self.clock.asleep(pause)

    async def _aopen(
        self, route: Route, index: int, request: ChatRequest
    ) -> OpenedStream[AsyncGenerator[ChatChunk, None]]:
        candidate = route.candidates[index]
        async with aclosing(route.aattempts(index)) as attempts:
            async for attempt in attempts:
                with attempt:
                    ticket = route.admit(candidate)
                    started = self.clock.monotonic()
                    chunks: AsyncGenerator[ChatChunk, None] | None = None
                    try:
                        chunks = candidate.backend.astream(
                            request,
                            candidate.model,
                            route.timeouts(candidate, stream=True, backstop=True),
                        )
                        opened = OpenedStream(chunks, ticket, started)
                        limit, phase = route.first_token_limit(candidate, started)
                        try:
                            async with asyncio.timeout(limit):
                                async for chunk in chunks:
                                    opened.buffered.append(chunk)
                                    if has_token(chunk):
                                        route.first_token(candidate, opened)
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


def _balances(config: ForgeConfig) -> bool:
    """Whether any order entry is balanced (``warm-first`` over several deployments): only
    then does the fleet's load matter, and is it shared."""
    if config.routing.balance != "warm-first":
        return False
    providers = config.providers
    return any(len(providers.resolve(str(entry)) or []) > 1 for entry in providers.fallback.order)


def _embedder(candidate: Candidate) -> EmbeddingBackend:
    """``candidate``'s backend as an `EmbeddingBackend` (the planner kept only those)."""
    backend = candidate.backend
    assert isinstance(backend, EmbeddingBackend)
    return backend
