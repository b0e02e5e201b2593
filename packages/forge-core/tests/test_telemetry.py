"""OpenTelemetry from the router: the span tree, GenAI attribute names and metrics.

The SDK's in-memory exporters (`otel_support`) against fault servers on 127.0.0.1: a success,
a fallback from a refused port, a stream cut after its first token, an embedding, drops and
breaker transitions; ``OTEL_SEMCONV_STABILITY_OPT_IN``; telemetry off; no import without need.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from fault_server import (
    FaultServer,
    close_mid_stream,
    forge_on,
    held,
    ok,
    stall_mid_stream,
    status,
)
from forge_core import (
    FallbackFailed,
    Forge,
    ForgeConfig,
    Provider,
    StreamInterrupted,
)
from forge_core.config.loader import apply_overrides
from forge_core.observability import otel as otel_module
from forge_core.observability.metrics import Metrics
from forge_core.observability.otel import (
    DURATION_BUCKETS,
    TOKEN_BUCKETS,
    Instruments,
    current_instruments,
)
from forge_core.observability.telemetry import Telemetry
from forge_test_support import closed_port_url, config_for
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from otel_support import Collected, in_memory_telemetry

SUPPORT = Path(__file__).resolve().parents[3] / "tests" / "support"


@pytest.fixture
def otel() -> Iterator[Collected]:
    with in_memory_telemetry() as collected:
        yield collected


def attributes(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def only_root(otel: Collected) -> Any:
    (root,) = otel.roots()
    return root


# -- a success ------------------------------------------------------------------------------------


def test_a_success_is_one_chat_span_with_one_attempt_child(otel: Collected) -> None:
    with FaultServer([ok("hi")]) as server:
        answer = forge_on(server).chat("hello", max_tokens=5, temperature=0.2)
    root = only_root(otel)
    assert root.name == "chat m"
    assert root.kind is SpanKind.CLIENT
    assert root.status.status_code is StatusCode.UNSET
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    assert attributes(root) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "m",
        "gen_ai.request.max_tokens": 5,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": answer.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 4,
        "server.address": "127.0.0.1",
        "server.port": port,
        "forge.route.attempts": 1,
    }
    (attempt,) = otel.children(root)
    assert attempt.name == "forge.attempt openai:m"
    assert attempt.kind is SpanKind.CLIENT
    assert attempt.context.trace_id == root.context.trace_id
    assert root.start_time <= attempt.start_time <= attempt.end_time <= root.end_time
    assert attributes(attempt) == {
        "forge.provider": "openai",
        "forge.deployment": "openai",
        "forge.model": "m",
        "forge.endpoint": server.base_url,
        "server.address": "127.0.0.1",
        "server.port": port,
        "forge.breaker.state": "closed",
        "forge.attempt.outcome": "ok",
    }
    assert len(otel.spans()) == 2


def test_a_success_records_the_genai_metrics_with_their_units_and_buckets(
    otel: Collected,
) -> None:
    with FaultServer([ok("hi")]) as server:
        forge_on(server).chat("hello")
    metrics = otel.metrics()
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    (point,) = duration.data.data_points
    assert point.count == 1 and point.sum > 0
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert dict(point.attributes)["gen_ai.provider.name"] == "openai"
    assert dict(point.attributes)["gen_ai.request.model"] == "m"
    assert "error.type" not in point.attributes
    usage = metrics["gen_ai.client.token.usage"]
    assert usage.unit == "{token}"
    by_type = {dict(p.attributes)["gen_ai.token.type"]: p for p in usage.data.data_points}
    assert {kind: p.sum for kind, p in by_type.items()} == {"input": 3, "output": 4}
    assert tuple(by_type["input"].explicit_bounds) == TOKEN_BUCKETS
    # Time to first chunk is for streams only; nothing fell back.
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics
    assert "forge.router.fallbacks" not in metrics


async def test_async_calls_trace_the_same(otel: Collected) -> None:
    with FaultServer([ok("hi")]) as server:
        await forge_on(server).achat("hello")
    root = only_root(otel)
    assert root.name == "chat m"
    assert [span.name for span in otel.children(root)] == ["forge.attempt openai:m"]


# -- when the spans are made ----------------------------------------------------------------------


class _ReleaseOnAttemptStart(SpanProcessor):
    """Keeps the names of spans as they start; sets ``release`` when an attempt span starts (a
    server can hold its answer until then)."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)
        if span.name.startswith("forge.attempt"):
            self.release.set()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_spans_start_while_the_attempt_waits_for_its_answer(otel: Collected, mode: str) -> None:
    # The server answers only once the attempt's span has started: were the spans made when the
    # request ended, it would hold its answer until forge's 2 s first-token limit.
    release = threading.Event()
    processor = _ReleaseOnAttemptStart(release)
    otel.tracer_provider.add_span_processor(processor)
    with FaultServer([held(release, "hi")]) as server:
        forge = forge_on(server, first_token_timeout_seconds=2.0)
        if mode == "sync":
            answer = forge.chat("hello", max_tokens=5)
        else:
            answer = asyncio.run(forge.achat("hello", max_tokens=5))
    assert answer.content == "hi"
    assert processor.started == ["chat m", "forge.attempt openai:m"]
    root = only_root(otel)
    # Started with what was known then, ended with the rest: the same attributes in the end.
    assert attributes(root)["gen_ai.request.max_tokens"] == 5
    assert attributes(root)["gen_ai.response.model"] == answer.model
    assert attributes(root)["gen_ai.usage.output_tokens"] == 4
    (attempt,) = otel.children(root)
    assert attributes(attempt)["forge.attempt.outcome"] == "ok"
    assert root.start_time <= attempt.start_time <= attempt.end_time <= root.end_time


def test_a_span_started_for_a_candidate_that_failed_is_renamed_for_the_one_that_served(
    otel: Collected,
) -> None:
    processor = _ReleaseOnAttemptStart(threading.Event())
    otel.tracer_provider.add_span_processor(processor)
    with (
        FaultServer([status(500, "boom")]) as failing,
        FaultServer([ok("hi")], models=("other",)) as serving,
    ):
        forge = Forge(
            config_for(
                {"name": "openai", "base_url": failing.base_url, "default_model": "m"},
                {"name": "openrouter", "base_url": serving.base_url, "default_model": "other"},
                routing={"max_retries": 0},
            )
        )
        answer = forge.chat("hello")
    assert answer.provider is Provider.OPENROUTER
    # The request span started as "chat m", for openai, while the first attempt waited...
    assert processor.started == [
        "chat m",
        "forge.attempt openai:m",
        "forge.attempt openrouter:other",
    ]
    root = only_root(otel)
    # ...and ended named, and described, after the one that served.
    assert root.name == "chat other"
    root_attributes = attributes(root)
    assert root_attributes["gen_ai.provider.name"] == "openrouter"
    assert root_attributes["gen_ai.request.model"] == "other"
    assert root_attributes["server.port"] == _port(serving)
    assert root_attributes["forge.route.fallback"] is True
    failed, served = otel.children(root)
    assert attributes(failed)["forge.attempt.outcome"] == attributes(failed)["error.type"]
    assert attributes(failed)["server.port"] == _port(failing)
    assert failed.status.status_code is StatusCode.ERROR
    assert attributes(served)["forge.attempt.outcome"] == "ok"


def _port(server: FaultServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1].split("/")[0])


# -- a fallback -----------------------------------------------------------------------------------


def test_a_fallback_from_a_refused_port_is_two_attempt_spans(otel: Collected) -> None:
    with FaultServer([ok("hi")]) as server:
        answer = forge_on(closed_port_url(), server).chat("hello")
    assert answer.provider is Provider.OPENROUTER
    root = only_root(otel)
    root_attributes = attributes(root)
    assert root_attributes["gen_ai.provider.name"] == "openrouter"
    assert root_attributes["forge.route.fallback"] is True
    assert root_attributes["forge.route.attempts"] == 2
    assert "error.type" not in root_attributes
    refused, served = otel.children(root)
    assert refused.name == "forge.attempt openai:m"
    assert attributes(refused)["forge.attempt.outcome"] == "unavailable"
    assert attributes(refused)["error.type"] == "unavailable"
    assert refused.status.status_code is StatusCode.ERROR
    assert served.name == "forge.attempt openrouter:m"
    assert attributes(served)["forge.attempt.outcome"] == "ok"
    assert refused.end_time <= served.start_time
    (fallback,) = otel.points("forge.router.fallbacks")
    assert fallback.value == 1
    assert dict(fallback.attributes) == {
        "gen_ai.operation.name": "chat",
        "forge.fallback.from": "openai",
        "forge.fallback.to": "openrouter",
    }


def test_every_candidate_failing_ends_the_span_with_error_type(otel: Collected) -> None:
    with pytest.raises(FallbackFailed):
        forge_on(closed_port_url()).chat("hello")
    root = only_root(otel)
    assert root.status.status_code is StatusCode.ERROR
    assert attributes(root)["error.type"] == "fallback_failed"
    assert attributes(root)["forge.route.last_error"] == "unavailable"
    (point,) = otel.points("gen_ai.client.operation.duration")
    assert dict(point.attributes)["error.type"] == "fallback_failed"


# -- a stream cut after its first token -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_interrupted_after_its_first_token(otel: Collected, mode: str) -> None:
    chunks: list[Any] = []

    async def consume(forge: Any) -> None:
        async for chunk in forge.astream("hello"):
            chunks.append(chunk)

    with FaultServer([close_mid_stream("Hel", "lo")]) as server:
        forge = forge_on(server)
        with pytest.raises(StreamInterrupted) as raised:
            if mode == "sync":
                chunks.extend(forge.stream("hello"))
            else:
                asyncio.run(consume(forge))
    assert "".join(chunk.content for chunk in chunks).startswith("Hel")
    route = raised.value.route
    assert route is not None
    root = only_root(otel)
    root_attributes = attributes(root)
    assert root.name == "chat m"
    assert root.status.status_code is StatusCode.ERROR
    assert root_attributes["error.type"] == "stream_interrupted"
    assert root_attributes["gen_ai.request.stream"] is True
    assert root_attributes["gen_ai.response.time_to_first_chunk"] > 0
    (attempt,) = otel.children(root)
    assert attributes(attempt)["error.type"] == route.attempts[-1].error_kind
    (first_chunk,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.count == 1
    assert tuple(first_chunk.explicit_bounds) == DURATION_BUCKETS
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes)["error.type"] == "stream_interrupted"


def test_a_stream_that_finishes_records_time_to_first_chunk(otel: Collected) -> None:
    with FaultServer([ok("hi", "h", "i")]) as server:
        chunks = list(forge_on(server).stream("hello"))
    assert chunks[-1].route is not None
    root = only_root(otel)
    assert attributes(root)["gen_ai.request.stream"] is True
    ttft = attributes(root)["gen_ai.response.time_to_first_chunk"]
    assert ttft == pytest.approx(chunks[-1].route.ttft_ms / 1000.0)
    (point,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert point.count == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_closed_early_ends_its_spans_as_cancelled(otel: Collected, mode: str) -> None:
    async def first_then_close(forge: Any) -> None:
        stream = forge.astream("hello")
        await anext(stream)
        await stream.aclose()

    # The stream holds still after its first token, so closing it is what ends it.
    with FaultServer([stall_mid_stream("Hel")]) as server:
        forge = forge_on(server)
        if mode == "sync":
            stream = forge.stream("hello")
            next(stream)
            stream.close()
        else:
            asyncio.run(first_then_close(forge))
    root = only_root(otel)
    assert attributes(root)["error.type"] == "cancelled"
    (attempt,) = otel.children(root)
    assert attributes(attempt)["forge.attempt.outcome"] == "cancelled"


def test_a_sync_stream_span_is_a_child_of_the_callers_span(otel: Collected) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with FaultServer([ok("hi"), ok("hi")]) as server, tracer.start_as_current_span("app") as app:
        forge = forge_on(server)
        list(forge.stream("hello"))
        forge.chat("hello")
    requests = [span for span in otel.spans() if span.name == "chat m"]
    assert len(requests) == 2
    for span in requests:
        assert span.parent is not None
        assert span.parent.span_id == app.get_span_context().span_id


# -- an embedding ---------------------------------------------------------------------------------


def test_an_embedding_is_an_embeddings_span(otel: Collected) -> None:
    with FaultServer() as server:
        response = forge_on(server).embed(["one", "two"])
    root = only_root(otel)
    assert root.name == f"embeddings {response.route.attempts[0].model}"
    root_attributes = attributes(root)
    assert root_attributes["gen_ai.operation.name"] == "embeddings"
    assert root_attributes["gen_ai.provider.name"] == "openai"
    assert root_attributes["gen_ai.usage.input_tokens"] == 2
    assert root_attributes["gen_ai.embeddings.dimension.count"] == response.dimensions
    assert "gen_ai.usage.output_tokens" not in root_attributes
    assert "gen_ai.response.finish_reasons" not in root_attributes
    assert [span.name for span in otel.children(root)] == [
        f"forge.attempt openai:{response.route.attempts[0].model}"
    ]
    usage = otel.points("gen_ai.client.token.usage")
    assert [dict(p.attributes)["gen_ai.token.type"] for p in usage] == ["input"]
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes)["gen_ai.operation.name"] == "embeddings"


# -- drops and breaker transitions ----------------------------------------------------------------


def test_drops_are_span_events_and_breaker_transitions_are_counted(otel: Collected) -> None:
    refused = closed_port_url()
    with FaultServer([ok("one"), ok("two")]) as server:
        forge = forge_on(refused, server, breaker_failure_threshold=1)
        forge.chat("first")  # the refused endpoint's circuit opens
        forge.chat("second")  # and the planner drops it
    first, second = sorted(otel.roots(), key=lambda span: span.start_time or 0)
    opened = otel.children(first)[0]
    assert attributes(opened)["forge.breaker.transition"] == "closed->open"
    assert attributes(opened)["forge.breaker.state"] == "open"
    (drop,) = second.events
    assert drop.name == "forge.drop"
    event = dict(drop.attributes or {})
    detail = str(event.pop("forge.drop.detail"))
    assert event == {
        "forge.provider": "openai",
        "forge.deployment": "openai",
        "forge.model": "m",
        "forge.drop.reason": "circuit_open",
    }
    assert detail.startswith(f"circuit open at {refused}")
    assert attributes(second)["forge.route.drops"] == 1
    assert [span.name for span in otel.children(second)] == ["forge.attempt openrouter:m"]
    (transition,) = otel.points("forge.breaker.transitions")
    assert dict(transition.attributes) == {
        "forge.endpoint": refused,
        "forge.breaker.from": "closed",
        "forge.breaker.to": "open",
    }
    (dropped,) = otel.points("forge.router.drops")
    assert dropped.value == 1
    assert dict(dropped.attributes)["forge.drop.reason"] == "circuit_open"


# -- metric measurements: batched, attribute sets cached ------------------------------------------


@pytest.fixture
def instruments(otel: Collected) -> Instruments:
    """forge's instruments on the in-memory providers (their measurements not yet handed over)."""
    current = current_instruments()
    assert current is not None
    return current


def test_measurements_wait_for_a_collection_and_each_collection_sees_them(
    otel: Collected, instruments: Instruments
) -> None:
    with FaultServer([ok("one"), ok("two")]) as server:
        forge = forge_on(server)
        forge.chat("first")
        # Kept by forge (duration, input and output tokens) until a reader collects...
        assert len(instruments._pending) == 3
        (point,) = otel.points("gen_ai.client.operation.duration")
        assert point.count == 1
        assert len(instruments._pending) == 0
        # ...and each collection sees what was measured before it.
        forge.chat("second")
        (point,) = otel.points("gen_ai.client.operation.duration")
        assert point.count == 2


def test_a_request_waiting_for_its_answer_hands_a_full_batch_to_the_sdk(
    otel: Collected, instruments: Instruments, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otel_module, "_BATCH", 3)
    handed: list[int] = []
    original = instruments.flush

    def flush() -> None:
        before = len(instruments._pending)
        original()
        handed.append(before - len(instruments._pending))

    monkeypatch.setattr(instruments, "flush", flush)
    with FaultServer([ok("one"), ok("two")]) as server:
        forge = forge_on(server)
        forge.chat("first")
        assert len(instruments._pending) == 3 and handed == []
        forge.chat("second")
    # The second request handed over the first one's three while it waited, and kept its own.
    assert handed == [3]
    assert len(instruments._pending) == 3
    assert {kind: p.sum for kind, p in _usage(otel).items()} == {"input": 6, "output": 8}


def test_measurements_go_to_the_sdk_without_a_collection_or_a_wait_once_too_many_are_kept(
    otel: Collected, instruments: Instruments, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otel_module, "_MOST_KEPT", 4)
    with FaultServer([ok("one"), ok("two")]) as server:
        forge = forge_on(server)
        forge.chat("first")
        forge.chat("second")  # the 4th measurement hands the four over
    assert len(instruments._pending) == 2
    # Each measurement once: the four handed over and the two a collection takes.
    assert {kind: p.sum for kind, p in _usage(otel).items()} == {"input": 6, "output": 8}


def test_changing_the_providers_hands_what_was_measured_to_the_old_ones() -> None:
    with in_memory_telemetry() as first:
        with FaultServer([ok("hi")]) as server:
            forge_on(server).chat("hello")
        with in_memory_telemetry():
            (point,) = first.points("gen_ai.client.operation.duration")
            assert point.count == 1


def test_cached_attribute_sets_do_not_carry_one_request_into_another(otel: Collected) -> None:
    refused = closed_port_url()
    with FaultServer([ok("one"), ok("two"), ok("three")]) as server:
        direct = forge_on(server)
        direct.chat("first", max_tokens=5)
        with pytest.raises(FallbackFailed):
            forge_on(refused).chat("fails")
        forge_on(refused, server).chat("falls back")
        direct.chat("again")
    by_outcome: dict[tuple[str, str | None], int] = {}
    for point in otel.points("gen_ai.client.operation.duration"):
        found = dict(point.attributes)
        key = (str(found["gen_ai.provider.name"]), found.get("error.type"))
        by_outcome[key] = by_outcome.get(key, 0) + point.count
        if found.get("error.type") is None:
            assert "server.port" in found and "gen_ai.response.model" in found
    assert by_outcome == {
        ("openai", None): 2,
        ("openai", "fallback_failed"): 1,
        ("openrouter", None): 1,
    }
    usage = [dict(p.attributes) for p in otel.points("gen_ai.client.token.usage")]
    assert sorted((u["gen_ai.provider.name"], u["gen_ai.token.type"]) for u in usage) == [
        ("openai", "input"),
        ("openai", "output"),
        ("openrouter", "input"),
        ("openrouter", "output"),
    ]
    assert all("error.type" not in u for u in usage)
    # The spans are each their own: the first request's max_tokens is not on the last one's.
    roots = sorted(otel.roots(), key=lambda span: span.start_time or 0)
    assert [attributes(root).get("gen_ai.request.max_tokens") for root in roots] == [
        5,
        None,
        None,
        None,
    ]
    assert [attributes(root).get("forge.route.fallback") for root in roots] == [
        None,
        None,
        True,
        None,
    ]
    for root in roots:
        for attempt in otel.children(root):
            outcome = attributes(attempt)["forge.attempt.outcome"]
            assert (outcome == "ok") is ("error.type" not in attributes(attempt))


def test_a_retried_attempt_has_its_own_attributes_and_the_next_request_none_of_them(
    otel: Collected,
) -> None:
    with FaultServer([status(503), ok("one"), ok("two")]) as server:
        forge = forge_on(server, clock=FakeClock())
        forge.chat("retried")
        forge.chat("first try")
    first, second = sorted(otel.roots(), key=lambda span: span.start_time or 0)
    failed, retried = (attributes(span) for span in otel.children(first))
    assert (failed["forge.attempt.outcome"], failed["error.type"]) == ("unavailable",) * 2
    assert "forge.attempt.retry" not in failed
    assert retried["forge.attempt.outcome"] == "ok" and retried["forge.attempt.retry"] == 1
    assert "error.type" not in retried
    (plain,) = (attributes(span) for span in otel.children(second))
    assert {key: value for key, value in retried.items() if key != "forge.attempt.retry"} == plain


def _usage(otel: Collected) -> dict[str, Any]:
    return {
        dict(p.attributes)["gen_ai.token.type"]: p for p in otel.points("gen_ai.client.token.usage")
    }


# -- conventions, switches, imports ---------------------------------------------------------------


def test_opt_in_to_the_latest_conventions_drops_gen_ai_system(
    otel: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    with FaultServer([ok("hi")]) as server:
        forge_on(server).chat("hello")
    root_attributes = attributes(only_root(otel))
    assert root_attributes["gen_ai.provider.name"] == "openai"
    assert "gen_ai.system" not in root_attributes
    for point in otel.points("gen_ai.client.operation.duration"):
        assert "gen_ai.system" not in point.attributes


def test_telemetry_off_emits_nothing_and_still_prices(otel: Collected) -> None:
    with FaultServer([ok("hi")]) as server:
        config = apply_overrides(forge_on(server).config, {"telemetry": {"enabled": False}})
        config = apply_overrides(config, {"pricing": {"models": {"m": {"input": 1, "output": 2}}}})
        forge = Forge(config)
        answer = forge.chat("hello")
    assert otel.spans() == []
    assert otel.metrics() == {}
    assert answer.route.cost_usd == pytest.approx((3 * 1 + 4 * 2) / 1e6)
    assert forge.stats()["usage"]["spend_usd"] == pytest.approx(answer.route.cost_usd)


def test_without_a_provider_set_nothing_is_traced() -> None:
    # OpenTelemetry's global providers are no-ops until an application sets one.
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("something in this process set a global tracer provider")
    with FaultServer([ok("hi")]) as server:
        forge = forge_on(server)
        forge.chat("hello")
    assert forge.router.telemetry.context() is None


def test_local_model_gauges_read_the_backends_stats(otel: Collected) -> None:
    class Loaded:
        def stats(self) -> dict[str, Any]:
            return {
                "models": [
                    {
                        "model": "tiny-gauge-model",
                        "purpose": "chat",
                        "isolation": "process",
                        "resident_bytes": 1234,
                        "load_seconds": 0.5,
                    }
                ]
            }

    telemetry = Telemetry(ForgeConfig(), Metrics(), {Provider.HUGGINGFACE: Loaded()})
    assert current_instruments() is not None
    memory = [
        point
        for point in otel.points("forge.local.model.memory")
        if dict(point.attributes)["forge.model"] == "tiny-gauge-model"
    ]
    load = [
        point
        for point in otel.points("forge.local.model.load_time")
        if dict(point.attributes)["forge.model"] == "tiny-gauge-model"
    ]
    assert [point.value for point in memory] == [1234]
    assert [point.value for point in load] == [0.5]
    assert otel.metrics()["forge.local.model.memory"].unit == "By"
    del telemetry


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUPPORT), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_import_forge_core_does_not_import_opentelemetry() -> None:
    result = _run(
        """
        import sys
        import forge_core
        print(sorted(m for m in sys.modules if m.startswith(("opentelemetry", "prometheus"))))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_opentelemetry_installed_routing_and_pricing_work() -> None:
    result = _run(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError("blocked for the test")
                return None

        sys.meta_path.insert(0, Block())
        from fault_server import FaultServer, forge_on, ok

        with FaultServer([ok("hi")]) as server:
            forge = forge_on(server)
            answer = forge.chat("hello")
        print(answer.content, forge.stats()["usage"]["cloud_tokens"])
        print(any(m.startswith("opentelemetry") for m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hi", "7", "False"]


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("local_only: cloud not allowed", "local_only"),
        ("lacks tool calling, images", "capability"),
        ("ollama has no embeddings API", "capability"),
        ("circuit open at http://h/v1 (retry in 3.0s)", "circuit_open"),
        ("circuit half-open at http://h/v1: a probe is already in flight", "circuit_half_open"),
        ("health check: down (cached)", "health_down"),
        ("total deadline passed before this candidate", "deadline"),
        ("http://h/v1 gave no answer earlier in this request", "endpoint_silent"),
        ("no client for this provider in this forge version", "no_client"),
        ("openai: no API key: set the OPENAI_API_KEY environment variable", "not_ready"),
    ],
)
def test_drop_reasons_fall_into_a_few_categories(reason: str, category: str) -> None:
    from forge_core.observability.redact import drop_reason, redact_credentials

    assert drop_reason(reason) == category
    assert (
        redact_credentials("circuit open at https://user:pw@h/v1") == "circuit open at https://h/v1"
    )
