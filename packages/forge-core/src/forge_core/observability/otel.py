"""forge on OpenTelemetry's API: the providers, the tracer and instruments, the metric batches.

OpenTelemetry is imported on the first request that uses it (`current_instruments`), never by
``import forge_core``; without it installed the cost is one failed import, once, and while the
application has set no OpenTelemetry provider (the API's are no-ops) nothing is traced either
(`Instruments.active`). Spans and metrics go to the application's global providers, or to the
ones `set_telemetry_providers` names. `Instruments` holds forge's tracer and metric instruments
on one pair of providers; metric measurements are handed to the SDK in batches
(`Instruments.measure`): while a later request waits, or when a reader collects. What is
measured, and when, is the traced observation's (`forge_core.observability.traced`).
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from forge_core.observability.gauges import model_load_time, model_memory

__all__ = [
    "DURATION_BUCKETS",
    "LATEST_GEN_AI",
    "SCOPE",
    "TOKEN_BUCKETS",
    "Instruments",
    "current_instruments",
    "latest_conventions",
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
#: ``OTEL_SEMCONV_STABILITY_OPT_IN`` value asking for the latest GenAI conventions only.
LATEST_GEN_AI = "gen_ai_latest_experimental"


# -- the providers spans and metrics go to --------------------------------------------------

_lock = threading.Lock()
_providers: tuple[Any, Any] = (None, None)
_instruments: Instruments | None = None
_missing = False


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


def current_instruments() -> Instruments | None:
    """The tracer and instruments for the providers now in force; None without OpenTelemetry."""
    global _instruments, _missing
    instruments = _instruments
    if instruments is not None or _missing:
        return instruments
    with _lock:
        if _instruments is None and not _missing:
            try:
                _instruments = Instruments(*_providers)
            except ImportError:
                _missing = True
        return _instruments


def latest_conventions() -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for the latest GenAI conventions only."""
    values = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    return LATEST_GEN_AI in {value.strip() for value in values.split(",")}


#: How long "no OpenTelemetry provider is set" is trusted before `Instruments.active` asks again.
_RECHECK_SECONDS = 1.0
#: Metric measurements kept before the next request that waits for an HTTP answer hands them
#: to the SDK in one go (about 40 requests' worth; a collection takes them all before it reads
#: the instruments).
_BATCH = 128
#: Measurements kept before the request that makes one more hands them over itself (no request
#: waited on HTTP since: in-process models).
_MOST_KEPT = 4 * _BATCH


class Instruments:
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
        self.affinity = meter.create_counter(
            "forge.router.affinity",
            unit="{request}",
            description="Balanced requests by what prefix affinity did: hit, miss, load_override.",
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
            callbacks=[model_load_time],
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
        return model_memory(options)

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
