"""A route: the bookkeeping of one routed request across its candidates.

Every attempt passes through here, whatever the path (sync or async, call or stream): the
circuit admits it (`Route.admit`), tenacity retries it (`Route.attempts`), its deadlines
come from `Route.timeouts`, and its outcome is recorded once in the trail, the metrics, the
breaker and the health cache (`Route.failed`, `Route.answered`, `Route.stream_finished`).
Each of those also tells the request's `Observation` (`_telemetry`: cost, spans, metrics).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from tenacity import AttemptManager

from forge_core.backends.base import AttemptTimeouts
from forge_core.errors import (
    FallbackFailed,
    ForgeError,
    ForgeTimeout,
    MalformedResponse,
    ModelNotFound,
    NoCapableCandidate,
    ProviderError,
    StreamInterrupted,
)
from forge_core.routing.breaker import CircuitState, Ticket
from forge_core.routing.budget import Reservation, estimate_tokens
from forge_core.routing.context import RoutingContext
from forge_core.routing.health import HealthStatus
from forge_core.routing.load import Busy
from forge_core.routing.planning.candidates import Candidate, Plan
from forge_core.routing.planning.compiled import NO_BACKEND
from forge_core.routing.planning.drops import LACKS, circuit_reason
from forge_core.routing.retry import FirstAttempt, RetryScope
from forge_core.routing.streaming import OpenedStream, StreamState, YieldedSoFar
from forge_core.types import (
    Attempt,
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Drop,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelRequirements,
    Provider,
    RouteTrail,
)

__all__ = ["CandidateSkipped", "Route"]

logger = logging.getLogger("forge.router")

#: How much later than the router's own limits an async provider call gives up by itself.
_BACKSTOP_GRACE = 0.25

R = TypeVar("R", ChatResponse, EmbeddingResponse)


class CandidateSkipped(Exception):
    """A candidate was not called (circuit open, deadline passed); its drop is recorded."""


class Route:
    """The bookkeeping of one routed request: attempts, drops, timings, the final errors.

    ``needs``: what the request needs, when the caller has worked it out already
    (`Planner.aready`); None: the planner works it out.
    """

    def __init__(
        self,
        context: RoutingContext,
        request: ChatRequest | EmbeddingRequest,
        *,
        otel_context: Any = None,
        needs: ModelRequirements | None = None,
    ) -> None:
        self.context = context
        self.clock = context.clock
        self.trail = RouteTrail()
        # Planned as far as the request goes (`Plan`): each drop reached joins the trail. The
        # first candidate (and the drops before it) now, so the observer starts with them;
        # it hears of each later drop when the plan reaches it.
        #: What prefix affinity knows of this request (None: off, or no chat request).
        self.affinity = context.affinity.begin(request)
        plan = context.planner.lazy(
            request, drops=self.trail.drops, needs=needs, affinity=self.affinity
        )
        plan.first()
        self.candidates: Sequence[Candidate] = plan
        self._started = self.clock.monotonic()
        self._deadline = self._started + context.routing.total_timeout_seconds
        self._last_provider: Provider | None = None
        #: Endpoints this request's failures already counted against (`failed`).
        self._counted_at: set[str] = set()
        #: Cost, spans and metrics of this request (`Telemetry.observe`).
        self.observer = context.telemetry.observe(
            request, plan, self.trail, otel_context, self.affinity
        )
        plan.on_drop = self.observer.dropped
        #: Endpoints that gave no HTTP answer in this request (refused, dropped, timed out), and
        #: the model asked: their other candidates (the next preferred model) are skipped.
        self._silent: dict[str, str] = {}
        #: The attempt in flight (a route makes one at a time), counted in the router's load.
        self._busy: Busy | None = None
        self._request = request
        #: The attempt's place in its deployment's rate budget, settled when it answers.
        self._reservation: Reservation | None = None
        #: Candidates skipped for their rate budget in this pass, and when each frees.
        self._budget_waits: dict[str, float] = {}

    def _has_after(self, index: int) -> bool:
        """Whether a candidate follows candidate ``index`` (planning at most one more)."""
        candidates = self.candidates
        if isinstance(candidates, Plan):
            return candidates.has_after(index)
        return index < len(candidates) - 1

    def _elapsed_ms(self, since: float) -> float:
        return (self.clock.monotonic() - since) * 1000.0

    def remaining(self) -> float:
        """Seconds left before the request's overall deadline."""
        return self._deadline - self.clock.monotonic()

    # -- retrying ---------------------------------------------------------------------------

    def _retry_scope(self, index: int) -> RetryScope:
        candidate = self.candidates[index]
        breaker = candidate.breaker
        return RetryScope(
            clock=self.clock,
            deadline=self._deadline,
            has_fallback=self._has_after(index),
            local=candidate.local,
            rng=self.context.rng,
            circuit_allows=lambda: breaker.state is not CircuitState.OPEN,
        )

    def attempts(self, index: int) -> Iterator[FirstAttempt | AttemptManager]:
        """The attempts at candidate ``index`` (`RetryPolicy.attempts`), sync."""
        return self.context.retry_policy.attempts(self._retry_scope(index))

    def aattempts(self, index: int) -> AsyncGenerator[FirstAttempt | AttemptManager, None]:
        """The attempts at candidate ``index`` (`RetryPolicy.aattempts`), async."""
        return self.context.retry_policy.aattempts(self._retry_scope(index))

    def admit(self, candidate: Candidate) -> Ticket:
        """The circuit's permission for one attempt; `CandidateSkipped` (and a drop) when refused."""
        reason = None
        ticket = None
        if self.remaining() <= 0:
            reason = "total deadline passed before this candidate"
        elif self._silent.get(candidate.endpoint, candidate.model) != candidate.model:
            reason = f"{candidate.endpoint} gave no answer earlier in this request"
        else:
            breaker = candidate.breaker
            ticket = breaker.admit()
            if ticket is None:
                reason = circuit_reason(breaker)
            else:
                reason = self._take_budget(candidate)
                if reason is not None:
                    breaker.release(ticket)
                    ticket = None
        if ticket is None:
            drop = Drop(
                provider=candidate.provider,
                model=candidate.model,
                deployment=candidate.deployment,
                reason=str(reason),
            )
            self.trail.drops.append(drop)
            self.observer.dropped(drop)
            raise CandidateSkipped(reason)
        self.observer.attempt_started(candidate, ticket.probe)
        self._busy = self.context.load.started(
            candidate.endpoint, candidate.model, loading=candidate.loaded is False
        )
        return ticket

    def _take_budget(self, candidate: Candidate) -> str | None:
        """Count this attempt against ``candidate``'s rate budget; why not, when it is over."""
        self._reservation = None
        found = self.context.limits.budget_of(candidate.deployment)
        if found is None:
            return None
        key, budget = found
        request = self._request
        if isinstance(request, ChatRequest):
            tokens = estimate_tokens([m.text or "" for m in request.messages], request.max_tokens)
        else:
            tokens = estimate_tokens(request.input, 0)
        reservation, wait = self.context.budgets.take(key, budget, tokens)
        if reservation is not None:
            self._reservation = reservation
            return None
        self._budget_waits[candidate.key] = wait
        limits = ", ".join(
            f"{limit} {unit if limit != 1 else unit[:-1]}/min"
            for limit, unit in ((budget.rpm, "requests"), (budget.tpm, "tokens"))
            if limit is not None
        )
        if math.isinf(wait):
            return f"rate budget: {tokens} tokens is more than {limits} allows"
        return f"rate budget: {limits} reached (frees in {wait:.1f}s)"

    def budget_pause(self) -> float | None:
        """After a pass over the candidates: seconds to wait before trying again the ones
        skipped for their rate budget (they become the candidates), or None when none was, or
        none frees before the deadline."""
        waits = self._budget_waits
        self._budget_waits = {}
        pause = min(waits.values(), default=math.inf)
        if math.isinf(pause) or pause > self.remaining():
            return None
        self.candidates = [c for c in self.candidates if c.key in waits]
        return pause

    def _attempt_ended(self, seconds: float | None = None) -> None:
        """The attempt in flight is over; ``seconds``: its latency, when it answered."""
        busy = self._busy
        if busy is not None:
            self._busy = None
            busy.ended(seconds)

    def _cold_start(self) -> bool:
        """Whether the attempt in flight is still waiting for its model to load."""
        return self._busy is not None and self._busy.loading

    # -- deadlines --------------------------------------------------------------------------

    def timeouts(
        self, candidate: Candidate, *, stream: bool, backstop: bool = False
    ) -> AttemptTimeouts:
        """The provider's deadlines for one attempt (on the real monotonic clock).

        With ``backstop`` the router enforces the limits itself (async) and the provider's
        are a little longer, so the trail always names the limit that was meant to fire.
        """
        first, idle = self.context.limits.limits(candidate.deployment)
        first += self.context.limits.load_allowance(candidate)
        grace = _BACKSTOP_GRACE if backstop else 0.0
        return AttemptTimeouts(
            connect=self.context.routing.connect_timeout_seconds,
            read=(max(first, idle) if stream else first) + grace,
            total_deadline=time.monotonic() + max(self.remaining(), 0.0) + grace,
            while_waiting=self.observer.while_waiting(),
        )

    def first_token_limit(self, candidate: Candidate, started: float) -> tuple[float, str]:
        """Seconds the first token may take from now (a cold start's load allowance
        included), and which limit that is."""
        first, _ = self.context.limits.limits(candidate.deployment)
        first += self.context.limits.load_allowance(candidate)
        left = first - (self.clock.monotonic() - started)
        remaining = self.remaining()
        return (left, "first_token") if left <= remaining else (remaining, "total")

    def timeout(self, candidate: Candidate, phase: str, seconds: float) -> ForgeTimeout:
        """The error for a limit the router itself enforced."""
        what = {"first_token": "no first token", "idle": "no chunk", "total": "total deadline"}
        first, idle = self.context.limits.limits(candidate.deployment)
        allowance = self.context.limits.load_allowance(candidate)
        total = self.context.routing.total_timeout_seconds
        limits = {"first_token": first + allowance, "idle": idle, "total": total}
        seconds = limits.get(phase, seconds)
        loading = (
            f" ({first:.3g}s + {allowance:.3g}s to load the model)"
            if phase == "first_token" and allowance
            else ""
        )
        return ForgeTimeout(
            f"{candidate.provider.value}:{candidate.model}: {phase.replace('_', '-')} timeout: "
            f"{what.get(phase, phase)} within {max(seconds, 0.0):.3g}s{loading}",
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
        allowance = self.context.limits.load_allowance(candidate) if phase == "first_token" else 0.0
        loading = f" (with {allowance:.3g}s to load the model)" if allowance else ""
        labelled = ForgeTimeout(
            f"{phase.replace('_', '-')} timeout{loading}: {exc}",
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
                deployment=candidate.deployment,
                ok=False,
                error_kind=exc.kind,
                message=str(exc),
                elapsed_ms=elapsed,
                affinity=self._reason(candidate),
            )
        )
        self.context.metrics.record(candidate.key, ok=False, kind=exc.kind)
        if isinstance(exc, ModelNotFound):
            self.context.planner.model_missing(candidate)
        elif exc.status_code is None and exc.retryable:
            self._silent.setdefault(candidate.endpoint, candidate.model)
        breaker = candidate.breaker
        if (
            isinstance(exc, ForgeTimeout)
            and exc.phase in ("first_token", "total")
            and not streamed
            and self._cold_start()
            and self.context.limits.forgive_load(candidate)
        ):
            # The host was loading the model (a cold start): slow, not broken. The request
            # fails over all the same; the circuit stays as it was.
            logger.info("forge: %s timed out loading the model: no circuit failure", candidate.key)
            breaker.release(ticket)
        elif exc.retryable:
            trip = isinstance(exc, ForgeTimeout) and self.context.routing.breaker_open_on_timeout
            if candidate.endpoint in self._counted_at and not (ticket.probe or trip):
                # A retry of a request already counted here: the circuit opens on failures of
                # distinct requests, so one request cannot take the endpoint from the others.
                breaker.release(ticket)
            else:
                self._counted_at.add(candidate.endpoint)
                breaker.record_failure(ticket, trip=trip)
        else:
            # Auth, bad request (a refused parameter too), unknown model: the endpoint
            # answered, so it is up.
            breaker.record_success(ticket)
        self._attempt_ended()
        self.observer.attempt_ended(candidate, exc)
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
        candidate.breaker.release(ticket)
        self._attempt_ended()
        self.observer.abandoned(candidate)

    def first_token(self, candidate: Candidate, opened: OpenedStream[Any]) -> None:
        """Record the time to the first content token (the attempt's latency sample)."""
        if self.trail.ttft_ms is None:
            self.trail.ttft_ms = self._elapsed_ms(self._started)
        opened.ttft_ms = self._elapsed_ms(opened.started)
        self._model_answered(candidate, opened.ttft_ms / 1000.0)

    def _model_answered(self, candidate: Candidate, seconds: float) -> None:
        """The model produced its first token after ``seconds``: it is loaded there now."""
        busy = self._busy
        if busy is None:
            return
        if busy.loading:
            self.context.resident.mark_loaded(candidate.endpoint, candidate.model)
            self.context.limits.loaded(candidate)
        busy.first_token(seconds)

    def _reason(self, candidate: Candidate) -> str | None:
        """Why balancing placed ``candidate`` (`Attempt.affinity`), None when it did not."""
        affinity = self.affinity
        return None if affinity is None else affinity.reason(candidate.endpoint, candidate.model)

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
            Attempt(
                provider=candidate.provider,
                model=candidate.model,
                deployment=candidate.deployment,
                ok=True,
                elapsed_ms=elapsed,
                affinity=self._reason(candidate),
            )
        )
        affinity = self.affinity
        if (
            affinity is not None
            and affinity.use_prefix
            and affinity.reason(candidate.endpoint, candidate.model) is not None
        ):
            # It holds this request's prompt now: the next turn of the conversation (or the
            # next one with the same system prompt and tools) goes back there.
            endpoint, model = candidate.endpoint, candidate.model
            self.context.affinity.served(
                endpoint, model, affinity.digests, affinity.known(endpoint, model)
            )
        self.context.metrics.record(
            candidate.key,
            ok=True,
            latency_ms=elapsed,
            ttft_ms=ttft_ms if ttft_ms is not None else elapsed,
        )
        candidate.breaker.record_success(ticket)
        self._model_answered(candidate, (ttft_ms if ttft_ms is not None else elapsed) / 1000.0)
        self._attempt_ended()
        self.observer.attempt_ended(candidate, None)
        self.context.health.mark(candidate.endpoint, HealthStatus.UP)
        self.trail.provider = candidate.provider
        self.trail.deployment = candidate.deployment
        self.trail.model = model
        self.trail.total_ms = self._elapsed_ms(self._started)
        return self.trail

    def answered(self, candidate: Candidate, ticket: Ticket, response: R, started: float) -> R:
        """The response, stamped with who served it, the route and its cost."""
        trail = self._succeeded(candidate, ticket, response.model, started, None)
        self._settle(getattr(response, "usage", None) or getattr(response, "input_tokens", None))
        if trail.ttft_ms is None:
            trail.ttft_ms = trail.total_ms
        # The backend made this response for this call and hands it over (`ChatBackend.chat`:
        # the router fills in the route), so it is stamped in place rather than copied.
        response.provider = candidate.provider
        noted = response.route
        if noted.notes and noted is not trail:
            trail.notes.extend(noted.notes)
        response.route = trail
        self.observer.answered(candidate, response)
        return response

    def _settle(self, usage: Any) -> None:
        """Replace the tokens the answer's budget reservation estimated by its usage (a
        `Usage`, or an embedding's input token count)."""
        reservation = self._reservation
        self._reservation = None
        total = usage if isinstance(usage, int) else getattr(usage, "total_tokens", None)
        if reservation is not None and total:
            self.context.budgets.settle(reservation, int(total))

    def stream_finished(
        self, candidate: Candidate, opened: OpenedStream[Any], state: StreamState
    ) -> ChatChunk:
        """The last chunk of a successful stream: finish reason, usage and the route."""
        model = state.model or candidate.model
        trail = self._succeeded(candidate, opened.ticket, model, opened.started, opened.ttft_ms)
        trail.notes.extend(state.notes)
        self._settle(state.usage)
        last = ChatChunk(
            content="",
            finish_reason=state.finish_reason or "stop",
            usage=state.usage,
            tool_calls=state.tool_calls,
            reasoning_parts=state.reasoning_parts,
            provider=candidate.provider,
            model=model,
            route=trail,
        )
        self.observer.answered(candidate, last)
        return last

    def check_finished(self, candidate: Candidate, state: StreamState) -> None:
        """A stream that said something must end with a finish reason; else it was cut."""
        if state.spoke and state.finish_reason is None:
            raise MalformedResponse(
                f"{candidate.key}: the stream ended without a finish reason (truncated)",
                provider=candidate.provider.value,
                model=candidate.model,
            )

    def may_continue(self, index: int, said: YieldedSoFar) -> bool:
        """Whether ``midstream: continue`` applies: text only, and a candidate left to ask."""
        return (
            self.context.routing.midstream == "continue"
            and not said.tool_calls
            and self._has_after(index)
        )

    def interrupted(
        self, candidate: Candidate, said: YieldedSoFar, exc: ProviderError
    ) -> StreamInterrupted:
        """The error for a stream that failed after content was yielded."""
        self.trail.total_ms = self._elapsed_ms(self._started)
        partial = said.text
        error = StreamInterrupted(
            f"{candidate.key} failed mid-stream after {len(partial)} characters: {exc}",
            partial=partial,
            provider=candidate.provider.value,
            model=candidate.model,
            cause=exc,
            route=self.trail,
        )
        self.observer.failed(error, stream=True)
        return error

    def _unmet_everywhere(self) -> list[str] | None:
        """What the chat request needs, when no deployment was tried because each one lacks
        a capability it needs (a deployment given no backend in this Forge aside); else None:
        a deployment that could have served was down, unready or over its limits."""
        if self.trail.attempts or not isinstance(self._request, ChatRequest):
            return None
        reasons = [drop.reason for drop in self.trail.drops if drop.reason != NO_BACKEND]
        if not reasons or not all(reason.startswith(LACKS) for reason in reasons):
            return None
        return ModelRequirements.of(self._request).unmet(Capabilities()) or None

    def exhausted(self, said: YieldedSoFar | None = None) -> ForgeError:
        """The error when no candidate answered (or none could continue a started stream)."""
        self.trail.total_ms = self._elapsed_ms(self._started)
        if not self.trail.attempts and not self.trail.drops:
            summary = "  no provider is configured"
        else:
            summary = self.trail.describe()
        error: ForgeError
        if said is not None and said.started:
            last = self.trail.attempts[-1]
            error = StreamInterrupted(
                f"no candidate could continue the stream after {len(said.text)} characters:\n"
                f"{summary}",
                partial=said.text,
                provider=last.provider.value,
                model=last.model,
                route=self.trail,
            )
        elif (needs := self._unmet_everywhere()) is not None:
            error = NoCapableCandidate(
                f"no deployment can take this request: it needs {', '.join(needs)}:\n{summary}",
                route=self.trail,
                needs=needs,
            )
        else:
            timed_out = any(a.error_kind == ForgeTimeout.kind for a in self.trail.attempts)
            headline = "every provider failed" + (" (some timed out)" if timed_out else "")
            error = FallbackFailed(f"{headline}:\n{summary}", route=self.trail)
        self.observer.failed(error, stream=said is not None)
        return error
