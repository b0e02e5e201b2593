"""OpenTelemetry's SDK with in-memory exporters, wired to forge for one test.

`InMemoryTelemetry` gives forge (`forge_core.set_telemetry_providers`) a `TracerProvider` whose
spans land in an `InMemorySpanExporter` and a `MeterProvider` read by an `InMemoryMetricReader`;
leaving the block puts forge back on the global (no-op) providers. `points` and `histogram`
read what the reader collected, by metric name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from forge_core import set_telemetry_providers
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Collected:
    """What forge sent during the block: finished spans and metrics."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def roots(self) -> list[ReadableSpan]:
        """The spans without a parent among forge's spans (one per routed request)."""
        spans = self.spans()
        ids = {span.context.span_id for span in spans}
        return [span for span in spans if span.parent is None or span.parent.span_id not in ids]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """``parent``'s child spans, by start time."""
        kids = [
            span
            for span in self.spans()
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]
        return sorted(kids, key=lambda span: span.start_time or 0)

    def metrics(self) -> dict[str, Any]:
        """Every metric collected now, by name (the SDK's `Metric` objects)."""
        data = self.reader.get_metrics_data()
        found: dict[str, Any] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` (empty when it was not recorded)."""
        metric = self.metrics().get(name)
        return list(metric.data.data_points) if metric is not None else []


@contextmanager
def in_memory_telemetry() -> Iterator[Collected]:
    """forge's spans and metrics into memory for the block (`Collected`)."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    set_telemetry_providers(tracer_provider, meter_provider)
    try:
        yield Collected(exporter, reader, tracer_provider)
    finally:
        set_telemetry_providers()
        tracer_provider.shutdown()
        meter_provider.shutdown()
