"""Selection and fallback: which candidates to try for a request, in which order, and trying them.

The sync and async paths share every decision (`Router.plan`, `_Route`); only the I/O loops
differ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass

from forge_core._config import ForgeConfig
from forge_core._exceptions import FallbackFailed, ForgeTimeout, ProviderError, StreamInterrupted
from forge_core._types import (
    Attempt,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Drop,
    ModelId,
    ModelRequirements,
    Provider,
    RouteTrail,
    Usage,
)
from forge_core.providers import ChatBackend, read_timeout_for
from forge_core.providers._base import AttemptTimeouts

__all__ = ["Candidate", "Router"]

logger = logging.getLogger("forge.router")


@dataclass(frozen=True)
class Candidate:
    """One provider and model the router may call."""

    provider: Provider
    model: str
    backend: ChatBackend


class Router:
    """Builds the ordered candidate list for a request and tries it until one answers."""

    def __init__(self, config: ForgeConfig, backends: Mapping[Provider, ChatBackend]) -> None:
        self._config = config
        self._backends = dict(backends)

    # -- selection --------------------------------------------------------------------------

    def plan(self, request: ChatRequest) -> tuple[list[Candidate], list[Drop]]:
        """The candidates to try, in order, and the ones dropped before any network call."""
        prefs = self._config.model_preferences
        fallback = self._config.providers.fallback
        pinned = self._pinned(request.model or prefs.default_model)

        order = list(fallback.order)
        if prefs.default_provider is not None:
            order = [prefs.default_provider] + [p for p in order if p != prefs.default_provider]
        if prefs.local_first:
            order = [p for p in order if p.is_local] + [p for p in order if not p.is_local]
        wanted: list[tuple[Provider, str | None]] = [(p, None) for p in order]
        if pinned is not None:
            wanted = [pinned] + [(p, None) for p in order if p != pinned[0]]
        if not fallback.enabled:
            wanted = wanted[:1]

        local_only = prefs.local_only if request.local_only is None else request.local_only
        needs = ModelRequirements.of(request)
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
            model = model or backend.default_model()
            if local_only and not provider.is_local:
                drops.append(
                    Drop(provider=provider, model=model, reason="local_only: cloud not allowed")
                )
                continue
            unmet = needs.unmet(backend.capabilities(model))
            if unmet:
                drops.append(
                    Drop(provider=provider, model=model, reason="lacks " + ", ".join(unmet))
                )
                continue
            try:
                backend.check_ready(model)
            except ProviderError as exc:
                drops.append(Drop(provider=provider, model=model, reason=str(exc)))
                continue
            candidates.append(Candidate(provider, model, backend))
        return candidates, drops

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

    def _timeouts(self, provider: Provider, deadline: float) -> AttemptTimeouts:
        return AttemptTimeouts(
            connect=self._config.routing.connect_timeout_seconds,
            read=read_timeout_for(self._config, provider),
            total_deadline=deadline,
        )

    # -- trying -----------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> ChatResponse:
        """The first successful answer among the candidates."""
        route = _Route(self, request)
        for candidate in route.candidates:
            timeouts = route.begin(candidate)
            if timeouts is None:
                break
            try:
                response = candidate.backend.chat(request, candidate.model, timeouts)
            except ProviderError as exc:
                route.failed(candidate, exc)
                continue
            return route.answered(candidate, response)
        raise route.exhausted()

    async def achat(self, request: ChatRequest) -> ChatResponse:
        """Async `chat`."""
        route = _Route(self, request)
        for candidate in route.candidates:
            timeouts = route.begin(candidate)
            if timeouts is None:
                break
            try:
                response = await candidate.backend.achat(request, candidate.model, timeouts)
            except ProviderError as exc:
                route.failed(candidate, exc)
                continue
            return route.answered(candidate, response)
        raise route.exhausted()

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Chunks from the first candidate that produces any; failover only before the first."""
        route = _Route(self, request)
        for candidate in route.candidates:
            timeouts = route.begin(candidate)
            if timeouts is None:
                break
            state = _StreamState()
            chunks = candidate.backend.stream(request, candidate.model, timeouts)
            try:
                for chunk in chunks:
                    out = state.take(chunk, route)
                    if out is not None:
                        yield out
            except ProviderError as exc:
                route.failed(candidate, exc)
                if state.started:
                    raise route.interrupted(candidate, state, exc) from exc
                continue
            finally:
                chunks.close()
            yield route.stream_finished(candidate, state)
            return
        raise route.exhausted()

    async def astream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Async `stream`."""
        route = _Route(self, request)
        for candidate in route.candidates:
            timeouts = route.begin(candidate)
            if timeouts is None:
                break
            state = _StreamState()
            chunks = candidate.backend.astream(request, candidate.model, timeouts)
            try:
                async for chunk in chunks:
                    out = state.take(chunk, route)
                    if out is not None:
                        yield out
            except ProviderError as exc:
                route.failed(candidate, exc)
                if state.started:
                    raise route.interrupted(candidate, state, exc) from exc
                continue
            finally:
                await chunks.aclose()
            yield route.stream_finished(candidate, state)
            return
        raise route.exhausted()


class _StreamState:
    """What one streaming attempt has produced so far."""

    def __init__(self) -> None:
        self.started = False
        self.text: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None

    def take(self, chunk: ChatChunk, route: _Route) -> ChatChunk | None:
        """Record ``chunk``; return what to pass on (content and tool deltas only), if any."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        self.model = chunk.model
        if not chunk.content and not chunk.tool_call_deltas:
            return None
        if not self.started:
            self.started = True
            route.first_token()
        self.text.append(chunk.content)
        return chunk.model_copy(update={"usage": None, "finish_reason": None, "route": None})


class _Route:
    """The bookkeeping of one routed request: attempts, drops, timings, the final errors."""

    def __init__(self, router: Router, request: ChatRequest) -> None:
        self._router = router
        self.candidates, drops = router.plan(request)
        self.trail = RouteTrail(drops=drops)
        self._started = time.monotonic()
        self._deadline = self._started + router._config.routing.total_timeout_seconds
        self._attempt_started = self._started

    def _elapsed_ms(self, since: float) -> float:
        return (time.monotonic() - since) * 1000.0

    def begin(self, candidate: Candidate) -> AttemptTimeouts | None:
        """Start an attempt; None when the total deadline leaves no time for it."""
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
        return self._router._timeouts(candidate.provider, self._deadline)

    def failed(self, candidate: Candidate, exc: ProviderError) -> None:
        """Record a failed attempt."""
        logger.info("forge: %s:%s failed: %s", candidate.provider.value, candidate.model, exc)
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

    def first_token(self) -> None:
        """Record the time to the first content token."""
        self.trail.ttft_ms = self._elapsed_ms(self._started)

    def _succeeded(self, candidate: Candidate, model: str) -> RouteTrail:
        self.trail.attempts.append(
            Attempt(
                provider=candidate.provider,
                model=candidate.model,
                ok=True,
                elapsed_ms=self._elapsed_ms(self._attempt_started),
            )
        )
        self.trail.provider = candidate.provider
        self.trail.model = model
        self.trail.total_ms = self._elapsed_ms(self._started)
        return self.trail

    def answered(self, candidate: Candidate, response: ChatResponse) -> ChatResponse:
        """The response, stamped with who served it and the route."""
        trail = self._succeeded(candidate, response.model)
        if trail.ttft_ms is None:
            trail.ttft_ms = trail.total_ms
        return response.model_copy(update={"provider": candidate.provider, "route": trail})

    def stream_finished(self, candidate: Candidate, state: _StreamState) -> ChatChunk:
        """The last chunk of a successful stream: finish reason, usage and the route."""
        model = state.model or candidate.model
        trail = self._succeeded(candidate, model)
        return ChatChunk(
            content="",
            finish_reason=state.finish_reason or "stop",
            usage=state.usage,
            provider=candidate.provider,
            model=model,
            route=trail,
        )

    def interrupted(
        self, candidate: Candidate, state: _StreamState, exc: ProviderError
    ) -> StreamInterrupted:
        """The error for a stream that failed after content was yielded."""
        self.trail.total_ms = self._elapsed_ms(self._started)
        error = StreamInterrupted(
            f"{candidate.provider.value}:{candidate.model} failed mid-stream after "
            f"{len(''.join(state.text))} characters: {exc}",
            partial="".join(state.text),
            provider=candidate.provider.value,
            model=candidate.model,
            cause=exc,
            route=self.trail,
        )
        return error

    def exhausted(self) -> FallbackFailed:
        """The error when no candidate answered."""
        self.trail.total_ms = self._elapsed_ms(self._started)
        if not self.trail.attempts and not self.trail.drops:
            summary = "  no provider is configured"
        else:
            summary = self.trail.describe()
        timed_out = any(a.error_kind == ForgeTimeout.kind for a in self.trail.attempts)
        headline = "every provider failed" + (" (some timed out)" if timed_out else "")
        return FallbackFailed(f"{headline}:\n{summary}", route=self.trail)
