"""The traced observation: one routed request as OpenTelemetry GenAI spans and metrics.

`Traced` is the `Observation` `Telemetry.observe` gives a request while tracing is on. It
opens one span per request (``chat {model}`` / ``embeddings {model}``, the GenAI semantic
conventions) with a child span per attempt and the drops as events, and records the GenAI
client metrics and forge's own (docs/observability.md lists every name). While a request runs
it notes times and numbers; the spans are started (with the times noted) while an HTTP attempt
waits for its answer, on time the caller spends waiting anyway (`AttemptTimeouts.while_waiting`),
and ended with the rest of their attributes when the request ends; where no attempt waited on
HTTP (an in-process model, a refused port) they are made then, whole. Metric measurements go
to `Instruments.measure`, which hands them to the SDK in batches. Nothing a user wrote
(prompts, answers) and no error message goes into a span: error types, forge's own drop
reasons (URLs without credentials, `forge_core.observability.redact`), names and numbers only.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from forge_core.errors import FallbackFailed, ForgeError, StreamInterrupted
from forge_core.observability.metrics import AFFINITY_OUTCOMES
from forge_core.observability.observation import Observation, Observer
from forge_core.observability.redact import (
    drop_reason,
    is_http,
    redact_credentials,
    server_attributes,
)
from forge_core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Drop,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelId,
    Provider,
    RouteTrail,
    Usage,
)

if TYPE_CHECKING:
    import enum

    from forge_core.errors import ProviderError
    from forge_core.observability.observed import ObservedCandidate as Candidate
    from forge_core.observability.otel import Instruments

__all__ = ["AffinityOutcome", "AttemptSpan", "ServedAttributes", "Traced", "TracingObserver"]

logger = logging.getLogger("forge.telemetry")

#: An answer's metric attribute sets (`Telemetry.served_attributes`): duration, input, output.
ServedAttributes = tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]
#: An attempt span's name, whether it is an HTTP call, its attributes when it answered, and
#: those it starts with (the same without its outcome) (`Telemetry.attempt_attributes`).
AttemptSpan = tuple[str, bool, Mapping[str, Any], Mapping[str, Any]]
#: An attribute a span did not start with (`_changed`).
_ABSENT = object()
#: The attributes of each affinity outcome's count, made once.
_AFFINITY_ATTRIBUTES: Mapping[str, Mapping[str, str]] = {
    outcome: {"forge.affinity.outcome": outcome} for outcome in AFFINITY_OUTCOMES
}


class AffinityOutcome(Protocol):
    """What prefix affinity did for one request, as far as its observation reads it (the
    router's per-request affinity fits)."""

    @property
    def outcome(self) -> str | None:
        """``hit``, ``miss`` or ``load_override`` once a balanced choice was made; else None."""
        ...


class TracingObserver(Observer, Protocol):
    """A router's observer, as far as its traced observations read it (`Telemetry` fits): the
    price table, and the attribute sets that repeat on every request, built once per router."""

    def provider_attributes(self, attributes: dict[str, Any], provider: Provider | None) -> None:
        """Set the provider's name in ``attributes`` under the GenAI conventions asked for."""
        ...

    def attempt_attributes(self, candidate: Candidate, state: str) -> AttemptSpan:
        """An attempt span at ``candidate`` in breaker ``state``: name, HTTP or not, attributes."""
        ...

    def request_attributes(self, operation: str, candidate: Candidate) -> Mapping[str, Any]:
        """What a request for ``operation`` at ``candidate`` is known by before its answer."""
        ...

    def served_attributes(
        self, operation: str, candidate: Candidate, model: str
    ) -> ServedAttributes:
        """The metric attributes of an answer from ``candidate`` by ``model``."""
        ...


class Traced(Observation):
    """An `Observation` that becomes OpenTelemetry spans and metrics.

    While the request runs it notes times, breaker states and numbers. When an attempt waits
    on HTTP for its answer (`while_waiting`) it starts the attempt's span (and, the first
    time, the request span) with what is known then, and hands the SDK the measurements
    earlier requests left once they make a batch: the SDK's costly part, done while the caller
    waits anyway. When the request ends, `_emit` gives each span the rest of its attributes
    and ends it at the time noted, or makes it whole then if it was never started, and records
    the metrics, in one place.
    """

    telemetry: TracingObserver

    __slots__ = (
        "_affinity",
        "_attempt",
        "_attempts",
        "_context",
        "_drops",
        "_emitted_drops",
        "_end",
        "_end_ns",
        "_first",
        "_ins",
        "_operation",
        "_parent",
        "_request",
        "_span",
        "_span_attributes",
        "_span_candidate",
        "_span_name",
        "_start_ns",
    )

    def __init__(
        self,
        telemetry: TracingObserver,
        ins: Instruments,
        request: ChatRequest | EmbeddingRequest,
        candidates: Sequence[Candidate],
        trail: RouteTrail,
        context: Any,
        affinity: AffinityOutcome | None = None,
    ) -> None:
        super().__init__(telemetry, trail)
        self._ins = ins
        self._affinity = affinity
        self._start_ns = time.time_ns()
        self._context = context if context is not None else ins.get_current()
        self._request = request
        self._first = candidates[0] if candidates else None
        self._operation = "embeddings" if isinstance(request, EmbeddingRequest) else "chat"
        self._attempt: _Attempt | None = None
        self._attempts: list[_Attempt] = []
        self._drops: list[tuple[int, Drop]] = [(self._start_ns, drop) for drop in trail.drops]
        self._emitted_drops = 0
        self._end: _Answer | _Failure | None = None
        self._end_ns = 0
        #: The request span once started (`_start_span`), its name and starting attributes,
        #: and the context its attempt spans are children in.
        self._span: Any = None
        self._span_name = ""
        self._span_attributes: Mapping[str, Any] = {}
        self._span_candidate: Candidate | None = None
        self._parent: Any = None

    def while_waiting(self) -> Callable[[], None] | None:
        """`_waiting`: start the attempt's span (and the request's) while it waits."""
        return self._waiting

    def dropped(self, drop: Drop) -> None:
        """Note the drop and when: an event of the request span, and counted."""
        self._drops.append((time.time_ns(), drop))

    def attempt_started(self, candidate: Candidate, probe: bool) -> None:
        """Note the attempt: when, its breaker's state, a probe, which retry at ``candidate``."""
        retry = 0
        for earlier in self._attempts:  # none on a first attempt
            if earlier.candidate is candidate or earlier.candidate.key == candidate.key:
                retry += 1
        self._attempt = _Attempt(candidate, time.time_ns(), candidate.breaker.state, probe, retry)

    def _waiting(self) -> None:
        """The attempt in flight has sent its request: start its span (and the request's)."""
        attempt = self._attempt
        if attempt is None or attempt.span is not None or self._end is not None:
            return  # an attempt waits once; httpcore may send again on a fresh connection
        try:
            ins = self._ins
            span = self._span
            candidate = attempt.candidate
            if span is None:
                known = dict(self.telemetry.request_attributes(self._operation, candidate))
                self._request_parameters(known)
                span = self._start_span(f"{self._operation} {candidate.model}", known)
                self._span_candidate = candidate
            self._emit_drops(span)
            name, http, _, start = self.telemetry.attempt_attributes(
                candidate, attempt.before.value
            )
            if attempt.retry or attempt.probe:
                start = dict(start)
                self._attempt_parameters(start, attempt)
            attempt.span = ins.tracer.start_span(
                name,
                context=self._parent,
                kind=ins.client if http else ins.internal,
                attributes=start,
                start_time=attempt.start_ns,
            )
            attempt.span_attributes = start
            ins.flush_batch()
        except Exception:  # telemetry never fails a request
            logger.debug("forge: telemetry failed while a request waited", exc_info=True)

    def attempt_ended(self, candidate: Candidate, error: ProviderError | None) -> None:
        """Note the attempt's end, its breaker's state after it, and its error's kind."""
        attempt = self._attempt
        if attempt is None:
            return
        self._attempt = None
        attempt.end_ns = time.time_ns()
        attempt.after = candidate.breaker.state
        attempt.outcome = None if error is None else error.kind
        self._attempts.append(attempt)

    def abandoned(self, candidate: Candidate) -> None:
        """End the request now, its error the exception being handled (or ``cancelled``)."""
        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, GeneratorExit | asyncio.CancelledError):
            kind = "cancelled"
        else:
            kind = type(exc).__qualname__
        attempt = self._attempt
        if attempt is not None:
            self._attempt = None
            attempt.end_ns = time.time_ns()
            attempt.after = attempt.before
            attempt.outcome = kind
            self._attempts.append(attempt)
        # The route clock never ran to the end: the span's own duration is the best there is.
        duration = (time.time_ns() - self._start_ns) / 1e9
        self._finish(_Failure(kind, None, self.trail.ttft_ms, duration))

    def answered(
        self, candidate: Candidate, answer: ChatResponse | ChatChunk | EmbeddingResponse
    ) -> None:
        """Price the answer and count its tokens, then end the request: spans and metrics."""
        input_tokens, output_tokens, cost = self.account(candidate, answer)
        trail = self.trail
        if isinstance(answer, EmbeddingResponse):
            finish, dimensions, stream, usage = None, answer.dimensions, False, None
        else:
            finish, dimensions, usage = answer.finish_reason, None, answer.usage
            stream = isinstance(answer, ChatChunk)
        self._finish(
            _Answer(
                candidate,
                answer.model,
                finish,
                dimensions,
                input_tokens,
                output_tokens,
                cost,
                stream,
                trail.ttft_ms,
                (trail.total_ms or 0.0) / 1000.0,
                usage,
            )
        )

    def failed(self, error: ForgeError, *, stream: bool) -> None:
        """End the request with ``error``'s kind: its spans and metrics."""
        if isinstance(error, StreamInterrupted):
            kind = "stream_interrupted"
        elif isinstance(error, FallbackFailed):
            kind = "fallback_failed"
        else:
            kind = str(getattr(error, "kind", type(error).__qualname__))
        trail = self.trail
        self._finish(_Failure(kind, stream, trail.ttft_ms, (trail.total_ms or 0.0) / 1000.0))

    def _finish(self, end: _Answer | _Failure) -> None:
        if self._end is not None:
            return
        self._end = end
        self._end_ns = time.time_ns()
        try:
            self._emit(end)
            # Counted here rather than at the choice: only when OpenTelemetry is on, and
            # with the request's other measurements.
            outcome = self._affinity.outcome if self._affinity is not None else None
            if outcome is not None:
                ins = self._ins
                ins.measure(ins.affinity.add, 1, _AFFINITY_ATTRIBUTES[outcome], self._context)
        except Exception:  # telemetry never fails a request
            logger.debug("forge: telemetry failed to emit a request", exc_info=True)

    # -- the spans and metrics, once the request has ended ----------------------------------------

    def _emit(self, end: _Answer | _Failure) -> None:
        """End the spans (made now, if never started) and record the metrics of the request."""
        span = self._span
        if isinstance(end, _Answer) and span is not None and end.candidate is self._span_candidate:
            # The usual end: the span started for the candidate that served. It gets what only
            # the answer says; the rest it has.
            attributes: dict[str, Any] = {"gen_ai.response.model": end.model}
            self._answered_attributes(attributes, end)
            self._route_attributes(attributes, end)
            span.set_attributes(attributes)
            self._end_spans(span, end)
            self._record_answer(
                end, self.telemetry.served_attributes(self._operation, end.candidate, end.model)
            )
            return
        ins = self._ins
        first = self._first
        request = self._request
        operation = self._operation
        served: ServedAttributes | None = None
        if isinstance(end, _Answer):
            # Named after the candidate that served (the first planned, unless it fell back):
            # operation, provider, request and response model, server, as its metrics are.
            candidate = end.candidate
            served = self.telemetry.served_attributes(operation, candidate, end.model)
            attributes = dict(served[0])
            model: str | None = candidate.model
        else:
            model = first.model if first is not None else _model_of(request.model)
            attributes = {"gen_ai.operation.name": operation}
            self.telemetry.provider_attributes(
                attributes, first.provider if first is not None else None
            )
            if model:
                attributes["gen_ai.request.model"] = model
        self._request_parameters(attributes)
        if isinstance(end, _Answer):
            self._answered_attributes(attributes, end)
        else:
            self._failed_attributes(attributes, end)
        self._route_attributes(attributes, end)
        name = f"{operation} {model}" if model else operation
        if span is None:
            span = self._start_span(name, attributes)
        else:
            changed = _changed(self._span_attributes, attributes)
            if changed:
                span.set_attributes(changed)
            if name != self._span_name:
                span.update_name(name)
        if isinstance(end, _Failure):
            span.set_status(ins.status(ins.error, end.kind))
        self._end_spans(span, end)
        if isinstance(end, _Failure):
            self._record_failure(attributes, end)
        elif served is not None:
            self._record_answer(end, served)

    def _route_attributes(self, attributes: dict[str, Any], end: _Answer | _Failure) -> None:
        """Add how the request went: attempts, drops, whether it streamed and how soon."""
        attributes["forge.route.attempts"] = len(self._attempts)
        if self._drops:
            attributes["forge.route.drops"] = len(self._drops)
        if end.stream:
            attributes["gen_ai.request.stream"] = True
            if end.ttft_ms is not None:
                attributes["gen_ai.response.time_to_first_chunk"] = end.ttft_ms / 1000.0

    def _end_spans(self, span: Any, end: _Answer | _Failure) -> None:
        """The drops not yet added, the attempt spans, then the request span, at their ends."""
        self._emit_drops(span)
        for attempt in self._attempts:
            self._emit_attempt(attempt)
        span.end(end_time=self._end_ns)

    def _request_parameters(self, attributes: dict[str, Any]) -> None:
        """Add what the request asked for (maximum tokens, temperature, output type)."""
        request = self._request
        if isinstance(request, ChatRequest):
            if request.max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = request.max_tokens
            if request.temperature is not None:
                attributes["gen_ai.request.temperature"] = request.temperature
            if request.response_format:
                attributes["gen_ai.output.type"] = "json"

    def _start_span(self, name: str, attributes: Mapping[str, Any]) -> Any:
        """Start the request span, at the request's start, as a child of the caller's span."""
        ins = self._ins
        first = self._first
        kind = ins.client if first is not None and is_http(first.endpoint) else ins.internal
        span = ins.tracer.start_span(
            name,
            context=self._context,
            kind=kind,
            attributes=attributes,
            start_time=self._start_ns,
        )
        self._span, self._span_name, self._span_attributes = span, name, attributes
        self._parent = ins.set_span_in_context(span, self._context)
        return span

    def _measure(self, record: Callable[..., None], value: float, attributes: Any) -> None:
        """One metric measurement, in the request's context (for exemplars), batched."""
        self._ins.measure(record, value, attributes, self._context)

    def _emit_drops(self, span: Any) -> None:
        """The drops noted since the last call, as events of the request span (and counted)."""
        drops = self._drops
        for at, drop in drops[self._emitted_drops :]:
            self._emit_drop(span, at, drop)
        self._emitted_drops = len(drops)

    def _emit_drop(self, span: Any, at: int, drop: Drop) -> None:
        reason = drop_reason(drop.reason)
        self._measure(
            self._ins.drops.add,
            1,
            {
                "gen_ai.operation.name": self._operation,
                "forge.provider": drop.provider.value,
                "forge.drop.reason": reason,
            },
        )
        span.add_event(
            "forge.drop",
            {
                "forge.provider": drop.provider.value,
                "forge.deployment": drop.deployment or drop.provider.value,
                "forge.model": drop.model or "",
                "forge.drop.reason": reason,
                "forge.drop.detail": redact_credentials(drop.reason),
            },
            timestamp=at,
        )

    def _attempt_parameters(self, attributes: dict[str, Any], attempt: _Attempt) -> None:
        """Add what is known of ``attempt`` when it starts: a retry's number, a probe."""
        if attempt.retry:
            attributes["forge.attempt.retry"] = attempt.retry
        if attempt.probe:
            attributes["forge.breaker.probe"] = True

    def _emit_attempt(self, attempt: _Attempt) -> None:
        before = attempt.before
        after = attempt.after or before
        outcome = attempt.outcome
        span = attempt.span
        if (
            span is not None
            and outcome is None
            and after is before
            and not attempt.retry
            and not attempt.probe
        ):
            # The usual attempt: it started with all its attributes but its outcome.
            span.set_attribute("forge.attempt.outcome", "ok")
            span.end(end_time=attempt.end_ns or self._end_ns)
            return
        ins = self._ins
        name, http, common, _ = self.telemetry.attempt_attributes(attempt.candidate, after.value)
        attributes = common
        if attempt.retry or attempt.probe or after is not before or outcome is not None:
            attributes = dict(common)
            self._attempt_parameters(attributes, attempt)
            endpoint = attributes["forge.endpoint"]
            if attempt.probe:
                self._transition(endpoint, "open", before.value)
            if after is not before:
                attributes["forge.breaker.transition"] = f"{before.value}->{after.value}"
                self._transition(endpoint, before.value, after.value)
            if outcome is not None:
                attributes["forge.attempt.outcome"] = outcome
                attributes["error.type"] = outcome
        if span is None:
            span = ins.tracer.start_span(
                name,
                context=self._parent,
                kind=ins.client if http else ins.internal,
                attributes=attributes,
                start_time=attempt.start_ns,
            )
        else:
            changed = _changed(attempt.span_attributes, attributes)
            if changed:
                span.set_attributes(changed)
        if outcome is not None:
            span.set_status(ins.status(ins.error, outcome))
        span.end(end_time=attempt.end_ns or self._end_ns)

    def _transition(self, endpoint: str, before: str, after: str) -> None:
        self._measure(
            self._ins.transitions.add,
            1,
            {"forge.endpoint": endpoint, "forge.breaker.from": before, "forge.breaker.to": after},
        )

    def _answered_attributes(self, attributes: dict[str, Any], end: _Answer) -> None:
        """Add the answer's own attributes to those of the candidate that served it."""
        first = self._first
        if first is not None and first is not end.candidate and first.key != end.candidate.key:
            attributes["forge.route.fallback"] = True
        if end.dimensions is not None:
            attributes["gen_ai.embeddings.dimension.count"] = end.dimensions
        if end.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (end.finish_reason,)
        if end.input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = end.input_tokens
        if end.output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = end.output_tokens
        usage = end.usage
        if usage is not None:
            # The semantic conventions' (experimental) details: parts of the counts above.
            if usage.cached_input_tokens:
                attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
            if usage.cache_creation_input_tokens:
                attributes["gen_ai.usage.cache_creation.input_tokens"] = (
                    usage.cache_creation_input_tokens
                )
            if usage.reasoning_tokens:
                attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
        if end.cost is not None:
            attributes["forge.cost.usd"] = end.cost

    def _failed_attributes(self, attributes: dict[str, Any], end: _Failure) -> None:
        """Add the failure's attributes: the last candidate tried, the error type."""
        attempts = self._attempts
        last = attempts[-1].candidate if attempts else self._first
        if last is not None:
            self.telemetry.provider_attributes(attributes, last.provider)
            attributes["gen_ai.request.model"] = last.model
            if is_http(last.endpoint):
                attributes.update(server_attributes(last.endpoint))
        attributes["error.type"] = end.kind
        failed = [attempt.outcome for attempt in attempts if attempt.outcome]
        if failed:
            attributes["forge.route.last_error"] = failed[-1]

    def _record_answer(self, end: _Answer, served: ServedAttributes) -> None:
        ins = self._ins
        candidate = end.candidate
        operation = self._operation
        metric, inputs, outputs = served
        measure = self._measure
        measure(ins.duration.record, end.duration, metric)
        if end.input_tokens is not None:
            measure(ins.tokens.record, end.input_tokens, inputs)
        if end.output_tokens is not None:
            measure(ins.tokens.record, end.output_tokens, outputs)
        if end.stream and end.ttft_ms is not None:
            measure(ins.first_chunk.record, end.ttft_ms / 1000.0, metric)
        first = self._first
        if first is not None and first is not candidate and first.key != candidate.key:
            measure(
                ins.fallbacks.add,
                1,
                {
                    "gen_ai.operation.name": operation,
                    "forge.fallback.from": first.provider.value,
                    "forge.fallback.to": candidate.provider.value,
                },
            )
        if end.cost:
            measure(
                ins.cost.add,
                end.cost,
                {
                    "gen_ai.provider.name": candidate.provider.value,
                    "gen_ai.request.model": candidate.model,
                },
            )

    def _record_failure(self, attributes: Mapping[str, Any], end: _Failure) -> None:
        ins = self._ins
        metric = {
            key: attributes[key]
            for key in (
                "gen_ai.operation.name",
                "gen_ai.provider.name",
                "gen_ai.system",
                "gen_ai.request.model",
            )
            if key in attributes
        }
        self._measure(ins.duration.record, end.duration, {**metric, "error.type": end.kind})
        if end.stream and end.ttft_ms is not None:
            self._measure(ins.first_chunk.record, end.ttft_ms / 1000.0, metric)


class _Attempt:
    """One attempt as the request's thread saw it (and its span, once started)."""

    __slots__ = (
        "after",
        "before",
        "candidate",
        "end_ns",
        "outcome",
        "probe",
        "retry",
        "span",
        "span_attributes",
        "start_ns",
    )

    def __init__(
        self, candidate: Candidate, start_ns: int, before: enum.Enum, probe: bool, retry: int
    ) -> None:
        self.candidate = candidate
        self.start_ns = start_ns
        self.before = before
        self.probe = probe
        self.retry = retry
        self.end_ns = 0
        self.after: enum.Enum | None = None
        self.outcome: str | None = None
        self.span: Any = None
        self.span_attributes: Mapping[str, Any] = {}


class _Answer:
    """How a request ended when it was answered."""

    __slots__ = (
        "candidate",
        "cost",
        "dimensions",
        "duration",
        "finish_reason",
        "input_tokens",
        "model",
        "output_tokens",
        "stream",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        candidate: Candidate,
        model: str,
        finish_reason: str | None,
        dimensions: int | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost: float | None,
        stream: bool,
        ttft_ms: float | None,
        duration: float,
        usage: Usage | None = None,
    ) -> None:
        self.candidate = candidate
        self.model = model
        self.finish_reason = finish_reason
        self.dimensions = dimensions
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cost = cost
        self.stream = stream
        self.ttft_ms = ttft_ms
        self.duration = duration
        self.usage = usage


class _Failure:
    """How a request ended when it failed (``stream`` None: not known, it was abandoned)."""

    __slots__ = ("duration", "kind", "stream", "ttft_ms")

    def __init__(
        self, kind: str, stream: bool | None, ttft_ms: float | None, duration: float
    ) -> None:
        self.kind = kind
        self.stream = stream
        self.ttft_ms = ttft_ms
        self.duration = duration


def _changed(started: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``attributes`` a span that started with ``started`` does not have yet."""
    return {key: value for key, value in attributes.items() if started.get(key, _ABSENT) != value}


def _model_of(text: str | None) -> str | None:
    """The model part of a request's ``model`` (``provider:model`` or a bare name)."""
    return ModelId.parse(text).model if text else None
