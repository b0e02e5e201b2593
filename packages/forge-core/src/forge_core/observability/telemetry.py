"""forge's observer: per-call cost and tokens, and OpenTelemetry GenAI spans and metrics.

One `Telemetry` per router; `Telemetry.observe` gives each routed request an `Observation`,
which `Route` calls at a few points: a drop, an attempt's start and end, an abandoned attempt,
the answer, the final error. The plain `Observation` only prices the answer (``route.cost_usd``)
and counts its tokens for `Forge.stats`; when ``telemetry.enabled`` and ``opentelemetry-api``
is installed (``forge-core[otel]``) it is a `_Traced` observation, which also opens one span per
request (``chat {model}`` / ``embeddings {model}``, the GenAI semantic conventions) with a
child span per attempt and the drops as events, and records the GenAI client metrics and
forge's own. docs/observability.md lists every name.

OpenTelemetry is imported on the first request that uses it, never by ``import forge_core``;
without it installed the cost is one failed import, once, and while the application has set
no OpenTelemetry provider (the API's are no-ops) nothing is traced either. Spans and metrics
go to the application's global providers, or to the ones `set_telemetry_providers` names.
While a request runs its observation notes times and numbers; the spans are started (with
the times noted) while an HTTP attempt waits for its answer, on time the caller spends waiting
anyway (`AttemptTimeouts.while_waiting`), and ended with the rest of their attributes when the
request ends; where no attempt waited on HTTP (an in-process model, a refused port) they are
made then, whole. Metric measurements are handed to the SDK in batches
(`_Instruments.measure`): while a later request waits, or when a reader collects.
Nothing a user wrote (prompts, answers) and no error message goes into a span: error types,
forge's own drop reasons (URLs without credentials), names and numbers only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from forge_core._caches import put_bounded
from forge_core.errors import FallbackFailed, ForgeError, StreamInterrupted
from forge_core.observability.pricing import Pricing
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
)

if TYPE_CHECKING:
    import enum

    from forge_core.config.schema import ForgeConfig
    from forge_core.errors import ProviderError
    from forge_core.observability.metrics import Metrics
    from forge_core.observability.observed import ObservedCandidate as Candidate

__all__ = [
    "DURATION_BUCKETS",
    "TOKEN_BUCKETS",
    "Observation",
    "Telemetry",
    "set_telemetry_providers",
]

logger = logging.getLogger("forge.telemetry")

#: The instrumentation scope forge's spans and metrics carry.
SCOPE = "forge_core"
#: Bucket boundaries the GenAI conventions give for durations and time to first chunk (s).
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
#: Bucket boundaries the GenAI conventions give for token counts.
TOKEN_BUCKETS = tuple(4.0**n for n in range(14))
#: An answer's metric attribute sets (`Telemetry.served_attributes`): duration, input, output.
_Served = tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]
#: An attempt span's name, whether it is an HTTP call, its attributes when it answered, and
#: those it starts with (the same without its outcome) (`attempt_attributes`).
_AttemptSpan = tuple[str, bool, Mapping[str, Any], Mapping[str, Any]]
#: ``OTEL_SEMCONV_STABILITY_OPT_IN`` value asking for the latest GenAI conventions only.
LATEST_GEN_AI = "gen_ai_latest_experimental"

# -- the providers spans and metrics go to --------------------------------------------------

_lock = threading.Lock()
_providers: tuple[Any, Any] = (None, None)
_instruments: _Instruments | None = None
_missing = False
_live: weakref.WeakSet[Telemetry] = weakref.WeakSet()


def set_telemetry_providers(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send forge's spans to ``tracer_provider`` and its metrics to ``meter_provider``.

    Either left None means OpenTelemetry's global provider (``trace.set_tracer_provider``,
    ``metrics.set_meter_provider``), which is where forge sends them by default; calling this
    with no arguments goes back to those. For tests, benchmarks, and applications that keep
    forge's telemetry apart from their own. Takes effect for requests routed after the call.
    """
    global _providers, _instruments
    with _lock:
        old = _instruments
        _providers = (tracer_provider, meter_provider)
        _instruments = None
    if old is not None:
        old.flush()  # what was measured belongs to the providers in force when it was


def _current() -> _Instruments | None:
    """The tracer and instruments for the providers now in force; None without OpenTelemetry."""
    global _instruments, _missing
    instruments = _instruments
    if instruments is not None or _missing:
        return instruments
    with _lock:
        if _instruments is None and not _missing:
            try:
                _instruments = _Instruments(*_providers)
            except ImportError:
                _missing = True
        return _instruments


def _latest_conventions() -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for the latest GenAI conventions only."""
    values = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return LATEST_GEN_AI in {value.strip() for value in values.split(",")}


#: How long "no OpenTelemetry provider is set" is trusted before `_Instruments.active` asks again.
_RECHECK_SECONDS = 1.0
#: Metric measurements kept before the next request that waits for an HTTP answer hands them
#: to the SDK in one go (about 40 requests' worth; a collection takes them all before it reads
#: the instruments).
_BATCH = 128
#: Measurements kept before the request that makes one more hands them over itself (no request
#: waited on HTTP since: in-process models).
_MOST_KEPT = 4 * _BATCH
#: An attribute a span did not start with (`_changed`).
_ABSENT = object()


class _Instruments:
    """forge's tracer and metric instruments on one pair of providers (OpenTelemetry API)."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import context, metrics, trace
        from opentelemetry.metrics import _internal as metrics_internal
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from forge_core._version import __version__

        # Given providers are taken as real; the global ones only once the application has
        # set one (until then OpenTelemetry's are no-ops, and forge skips all the work).
        self._real = tracer_provider is not None or meter_provider is not None
        #: When `active` next asks OpenTelemetry for the global providers (monotonic).
        self._next_check = 0.0
        self._tracer_provider = trace.get_tracer_provider
        self._meter_provider = metrics.get_meter_provider
        self._noop_tracers = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        proxy_meters = getattr(metrics_internal, "_ProxyMeterProvider", metrics.NoOpMeterProvider)
        self._noop_meters = (metrics.NoOpMeterProvider, proxy_meters)
        self.get_current = context.get_current
        self.set_span_in_context = trace.set_span_in_context
        self.client = SpanKind.CLIENT
        self.internal = SpanKind.INTERNAL
        self.error = StatusCode.ERROR
        self.status = Status
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time from the request until the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.fallbacks = meter.create_counter(
            "forge.router.fallbacks",
            unit="{request}",
            description="Requests answered by a candidate other than the first one planned.",
        )
        self.drops = meter.create_counter(
            "forge.router.drops",
            unit="{candidate}",
            description="Candidates not called, by reason (planning or admission).",
        )
        self.transitions = meter.create_counter(
            "forge.breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes seen by forge's attempts.",
        )
        self.cost = meter.create_counter(
            "forge.cost.usd",
            unit="{USD}",
            description="What the answers cost, from the price table (local models: 0).",
        )
        #: Measurements not yet given to the SDK: (instrument's record or add, value,
        #: attributes, context). `measure` appends, `flush` hands them over.
        self._pending: deque[tuple[Callable[..., None], float, Mapping[str, Any], Any]] = deque()
        #: Whether the instruments take a measurement's context (OpenTelemetry 1.28 and later).
        self._contexts = "context" in inspect.signature(self.duration.record).parameters
        meter.create_observable_gauge(
            "forge.local.model.memory",
            callbacks=[self._collecting],
            unit="By",
            description="Resident memory of each loaded in-process model.",
        )
        meter.create_observable_gauge(
            "forge.local.model.load_time",
            callbacks=[_model_load_time],
            unit="s",
            description="How long each loaded in-process model took to load.",
        )

    def measure(
        self, record: Callable[..., None], value: float, attributes: Mapping[str, Any], context: Any
    ) -> None:
        """Measure ``value`` with ``record`` (an instrument's ``record`` or ``add``), in a batch.

        The SDK's cost of one measurement is mostly copying, checking and hashing its
        attributes, and it is about half when measurements follow each other than when each
        comes between two HTTP calls (measured with the SDK of uv.lock, ``benchmarks/README.md``).
        So they wait here until `_BATCH` have come and a request waits for its HTTP answer
        (`flush_batch`: the caller is waiting anyway), or `_MOST_KEPT` have come, or a reader
        collects (`_collecting`: every export and every scrape sees all measurements made
        before it), or the providers change.
        """
        pending = self._pending
        pending.append((record, value, attributes, context if self._contexts else None))
        if len(pending) >= _MOST_KEPT:
            self.flush()

    def flush_batch(self) -> None:
        """`flush`, once `_BATCH` measurements are kept."""
        if len(self._pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Hand the measurements kept by `measure` to the SDK (any thread, any number at once)."""
        pending = self._pending
        # No more than were there: on a busy process a flush is never an endless one.
        for _ in range(len(pending)):
            try:
                record, value, attributes, context = pending.popleft()
            except IndexError:  # another thread took the rest
                return
            try:
                if context is None:
                    record(value, attributes)
                else:
                    record(value, attributes, context)
            except Exception:  # telemetry never fails a request, nor a collection
                logger.debug("forge: a metric measurement failed", exc_info=True)

    def _collecting(self, options: Any) -> Iterable[Any]:
        """The memory gauge's callback: the SDK calls it first when a reader collects, so the
        kept measurements are handed over before the reader reads the instruments."""
        self.flush()
        return _model_memory(options)

    def active(self) -> bool:
        """Whether spans and metrics would go anywhere (a provider that is not a no-op).

        While none is set the answer is kept for `_RECHECK_SECONDS`: asking OpenTelemetry for
        the global providers reads the environment each time, a measurable share of a routed
        call; an application that sets its provider after forge started is seen that late.
        """
        if self._real:
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + _RECHECK_SECONDS
        if not isinstance(self._tracer_provider(), self._noop_tracers) or not isinstance(
            self._meter_provider(), self._noop_meters
        ):
            self._real = True  # a global provider, once set, stays
        return self._real


def _local_models() -> list[dict[str, Any]]:
    """The loaded in-process models of every live router's backends, each once."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for telemetry in list(_live):
        for backend in list(telemetry.backends.values()):
            own = getattr(backend, "stats", None)
            if not callable(own):
                continue
            try:
                stats = own()
            except Exception:  # a collection must never fail the application's export
                logger.debug("forge: backend stats failed", exc_info=True)
                continue
            for model in stats.get("models", []) if isinstance(stats, dict) else []:
                key = (model.get("model"), model.get("purpose"), model.get("path"))
                seen.setdefault(key, model)
    return list(seen.values())


def _gauge(field: str) -> Iterable[Any]:
    from opentelemetry.metrics import Observation as Measured

    for model in _local_models():
        value = model.get(field)
        if value is None:
            continue
        yield Measured(
            float(value),
            {
                "forge.model": str(model.get("model")),
                "forge.model.purpose": str(model.get("purpose") or "chat"),
                "forge.model.isolation": str(model.get("isolation") or ""),
            },
        )


def _model_memory(options: Any) -> Iterable[Any]:
    return list(_gauge("resident_bytes"))


def _model_load_time(options: Any) -> Iterable[Any]:
    return list(_gauge("load_seconds"))


# -- the observer -----------------------------------------------------------------------------


class Telemetry:
    """The observer of one router: prices answers, and traces requests when enabled."""

    def __init__(self, config: ForgeConfig, metrics: Metrics, backends: Mapping[str, Any]) -> None:
        self.enabled = config.telemetry.enabled
        self.pricing = Pricing(config.pricing)
        self.metrics = metrics
        self.backends = backends
        #: Emit only the latest GenAI conventions (``OTEL_SEMCONV_STABILITY_OPT_IN``), read once.
        self.latest = _latest_conventions()
        # Attribute sets that repeat on every request, built once (they are never mutated).
        self._attempts: dict[tuple[str, str, str, str], _AttemptSpan] = {}
        self._requests: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
        self._served: dict[tuple[str, str, str, str, str], _Served] = {}
        _live.add(self)

    def provider_attributes(self, attributes: dict[str, Any], provider: Provider | None) -> None:
        """Set ``gen_ai.provider.name`` (and, unless only the latest conventions are asked
        for, its name before semantic conventions 1.37, ``gen_ai.system``)."""
        name = provider.value if provider is not None else "forge"
        attributes["gen_ai.provider.name"] = name
        if not self.latest:
            attributes["gen_ai.system"] = name

    def attempt_attributes(self, candidate: Candidate, state: str) -> _AttemptSpan:
        """The name of an attempt span at ``candidate``, whether it is an HTTP call, and the
        attributes of one that answered, first try, in breaker ``state`` (unchanged): others
        start from a copy and add their own."""
        key = (candidate.deployment, candidate.model, candidate.endpoint, state)
        cached = self._attempts.get(key)
        if cached is None:
            http = _is_http(candidate.endpoint)
            attributes: dict[str, Any] = {
                "forge.provider": candidate.provider.value,
                "forge.deployment": candidate.deployment,
                "forge.model": candidate.model,
                "forge.endpoint": _safe_url(candidate.endpoint),
            }
            if http:
                attributes.update(_server(candidate.endpoint))
            attributes["forge.breaker.state"] = state
            start = dict(attributes)
            attributes["forge.attempt.outcome"] = "ok"
            name = f"forge.attempt {candidate.key}"
            cached = put_bounded(self._attempts, key, (name, http, attributes, start))
        return cached

    def request_attributes(self, operation: str, candidate: Candidate) -> Mapping[str, Any]:
        """What a request for ``operation`` at ``candidate`` is known by before it is answered:
        operation, provider, requested model, server (the attributes samplers are given)."""
        key = (operation, candidate.deployment, candidate.model, candidate.endpoint)
        cached = self._requests.get(key)
        if cached is None:
            attributes: dict[str, Any] = {"gen_ai.operation.name": operation}
            self.provider_attributes(attributes, candidate.provider)
            attributes["gen_ai.request.model"] = candidate.model
            if _is_http(candidate.endpoint):
                attributes.update(_server(candidate.endpoint))
            cached = put_bounded(self._requests, key, attributes)
        return cached

    def served_attributes(self, operation: str, candidate: Candidate, model: str) -> _Served:
        """The metric attributes of an answer from ``candidate`` by ``model``: its duration's,
        and its input and output token counts' (the same with ``gen_ai.token.type``)."""
        key = (operation, candidate.deployment, candidate.model, candidate.endpoint, model)
        cached = self._served.get(key)
        if cached is None:
            attributes = dict(self.request_attributes(operation, candidate))
            attributes["gen_ai.response.model"] = model
            served = (
                attributes,
                {**attributes, "gen_ai.token.type": "input"},
                {**attributes, "gen_ai.token.type": "output"},
            )
            cached = put_bounded(self._served, key, served)
        return cached

    def observe(
        self,
        request: ChatRequest | EmbeddingRequest,
        candidates: Sequence[Candidate],
        trail: RouteTrail,
        context: Any = None,
    ) -> Observation:
        """The observation of one routed request; ``context`` is the OpenTelemetry context its
        span is a child of (None: the current one)."""
        if self.enabled:
            instruments = _current()
            if instruments is not None and instruments.active():
                return _Traced(self, instruments, request, candidates, trail, context)
        return Observation(self, trail)

    def context(self) -> Any:
        """The caller's OpenTelemetry context, for a request routed on another thread (sync
        streams run on forge's background loop); None when tracing is off."""
        if not self.enabled:
            return None
        instruments = _current()
        if instruments is None or not instruments.active():
            return None
        return instruments.get_current()


class Observation:
    """One routed request as `Route` reports it; this base only prices the answer."""

    __slots__ = ("telemetry", "trail")

    def __init__(self, telemetry: Telemetry, trail: RouteTrail) -> None:
        self.telemetry = telemetry
        self.trail = trail

    def while_waiting(self) -> Callable[[], None] | None:
        """What to run while an attempt waits for its answer (`AttemptTimeouts.while_waiting`);
        None when there is nothing to do."""
        return None

    def dropped(self, drop: Drop) -> None:
        """A candidate was not called (its circuit refused, the deadline had passed)."""

    def attempt_started(self, candidate: Candidate, probe: bool) -> None:
        """The circuit admitted one attempt at ``candidate``."""

    def attempt_ended(self, candidate: Candidate, error: ProviderError | None) -> None:
        """The attempt answered (``error`` None) or failed; its breaker has been updated."""

    def abandoned(self, candidate: Candidate) -> None:
        """The caller gave up (cancelled, closed the stream) during an attempt: the request
        ends with the exception being handled."""

    def answered(
        self, candidate: Candidate, answer: ChatResponse | ChatChunk | EmbeddingResponse
    ) -> None:
        """The request's answer (a stream's last chunk): price it, count its tokens."""
        self.account(candidate, answer)

    def failed(self, error: ForgeError, *, stream: bool) -> None:
        """The request ends with ``error`` (every candidate failed, or a stream broke)."""

    def account(
        self, candidate: Candidate, answer: ChatResponse | ChatChunk | EmbeddingResponse
    ) -> tuple[int | None, int | None, float | None]:
        """Set ``route.cost_usd`` and count the tokens; returns (input, output, cost)."""
        input_tokens: int | None
        output_tokens: int | None
        if isinstance(answer, EmbeddingResponse):
            input_tokens = answer.input_tokens
            output_tokens = None
        elif answer.usage is not None:
            input_tokens, output_tokens = answer.usage.input_tokens, answer.usage.output_tokens
        else:
            input_tokens = output_tokens = None
        local = candidate.local
        if input_tokens is None:
            cost = 0.0 if local else None
            self.trail.cost_usd = cost
            return None, None, cost
        output = output_tokens or 0
        pricing = self.telemetry.pricing
        deployment = candidate.deployment
        cost = pricing.cost(
            candidate.provider,
            answer.model,
            input_tokens,
            output,
            deployment=deployment,
            local=local,
        )
        if cost is None and answer.model != candidate.model:
            cost = pricing.cost(
                candidate.provider,
                candidate.model,
                input_tokens,
                output,
                deployment=deployment,
                local=local,
            )
        self.trail.cost_usd = cost
        self.telemetry.metrics.record_usage(
            candidate.key,
            local=local,
            input_tokens=input_tokens,
            output_tokens=output,
            cost_usd=cost,
        )
        return input_tokens, output_tokens, cost


class _Traced(Observation):
    """An `Observation` that becomes OpenTelemetry spans and metrics.

    While the request runs it notes times, breaker states and numbers. When an attempt waits
    on HTTP for its answer (`while_waiting`) it starts the attempt's span (and, the first
    time, the request span) with what is known then, and hands the SDK the measurements
    earlier requests left once they make a batch: the SDK's costly part, done while the caller
    waits anyway. When the request ends, `_emit` gives each span the rest of its attributes
    and ends it at the time noted, or makes it whole then if it was never started, and records
    the metrics, in one place.
    """

    __slots__ = (
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
        telemetry: Telemetry,
        ins: _Instruments,
        request: ChatRequest | EmbeddingRequest,
        candidates: Sequence[Candidate],
        trail: RouteTrail,
        context: Any,
    ) -> None:
        super().__init__(telemetry, trail)
        self._ins = ins
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
        return self._waiting

    def dropped(self, drop: Drop) -> None:
        self._drops.append((time.time_ns(), drop))

    def attempt_started(self, candidate: Candidate, probe: bool) -> None:
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
        attempt = self._attempt
        if attempt is None:
            return
        self._attempt = None
        attempt.end_ns = time.time_ns()
        attempt.after = candidate.breaker.state
        attempt.outcome = None if error is None else error.kind
        self._attempts.append(attempt)

    def abandoned(self, candidate: Candidate) -> None:
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
        input_tokens, output_tokens, cost = self.account(candidate, answer)
        trail = self.trail
        if isinstance(answer, EmbeddingResponse):
            finish, dimensions, stream = None, answer.dimensions, False
        else:
            finish, dimensions = answer.finish_reason, None
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
            )
        )

    def failed(self, error: ForgeError, *, stream: bool) -> None:
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
        served: _Served | None = None
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
        kind = ins.client if first is not None and _is_http(first.endpoint) else ins.internal
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
        reason = _drop_reason(drop.reason)
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
                "forge.drop.detail": _redact(drop.reason),
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
        if end.cost is not None:
            attributes["forge.cost.usd"] = end.cost

    def _failed_attributes(self, attributes: dict[str, Any], end: _Failure) -> None:
        """Add the failure's attributes: the last candidate tried, the error type."""
        attempts = self._attempts
        last = attempts[-1].candidate if attempts else self._first
        if last is not None:
            self.telemetry.provider_attributes(attributes, last.provider)
            attributes["gen_ai.request.model"] = last.model
            if _is_http(last.endpoint):
                attributes.update(_server(last.endpoint))
        attributes["error.type"] = end.kind
        failed = [attempt.outcome for attempt in attempts if attempt.outcome]
        if failed:
            attributes["forge.route.last_error"] = failed[-1]

    def _record_answer(self, end: _Answer, served: _Served) -> None:
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


# -- helpers ------------------------------------------------------------------------------------


def _changed(started: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``attributes`` a span that started with ``started`` does not have yet."""
    return {key: value for key, value in attributes.items() if started.get(key, _ABSENT) != value}


def _model_of(text: str | None) -> str | None:
    """The model part of a request's ``model`` (``provider:model`` or a bare name)."""
    return ModelId.parse(text).model if text else None


def _is_http(endpoint: str) -> bool:
    """Whether ``endpoint`` (`endpoint_of`) is an HTTP base URL, not ``provider:in-process``."""
    return endpoint.startswith(("http://", "https://"))


@lru_cache(maxsize=256)
def _server(endpoint: str) -> Mapping[str, Any]:
    """``server.address`` and ``server.port`` of an HTTP endpoint."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


@lru_cache(maxsize=256)
def _safe_url(endpoint: str) -> str:
    """``endpoint`` without credentials, query or fragment (in-process names as they are)."""
    if not _is_http(endpoint):
        return endpoint
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


_CREDENTIALS = re.compile(r"(?<=://)[^/\s@]+@")


def _redact(text: str) -> str:
    """``text`` with any ``user:password@`` of a URL removed."""
    return _CREDENTIALS.sub("", text)


#: Drop reasons (forge's own texts, `_planning` and `Route.admit`) by what they begin with.
_DROP_REASONS = (
    ("local_only", "local_only"),
    ("lacks ", "capability"),
    ("circuit open", "circuit_open"),
    ("circuit half-open", "circuit_half_open"),
    ("health check", "health_down"),
    ("total deadline", "deadline"),
    ("no client", "no_client"),
)


def _drop_reason(reason: str) -> str:
    """A drop's reason as a low-cardinality category (``forge.drop.reason``)."""
    for prefix, category in _DROP_REASONS:
        if reason.startswith(prefix):
            return category
    if "has no embeddings API" in reason:
        return "capability"
    if "gave no answer earlier" in reason:
        return "endpoint_silent"
    return "not_ready"
