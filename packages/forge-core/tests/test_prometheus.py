"""Prometheus: ``forge stats --prometheus`` and `prometheus_text` parse as text exposition, and
the documented ``/metrics`` (OpenTelemetry's Prometheus exporter) carries forge's metrics.

Parsed with prometheus-client's own parser; fault servers on 127.0.0.1 answer the requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fault_server import FaultServer, forge_on, ok
from forge_cli_runner import invoke, write_config
from forge_core import Provider, prometheus_text, set_telemetry_providers
from forge_test_support import closed_port_url
from prometheus_client.parser import text_string_to_metric_families


def families(text: str) -> dict[str, Any]:
    """Metric families by name (prometheus-client drops a counter's ``_total``)."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}


def test_stats_after_a_fallback_parse_as_prometheus_text() -> None:
    refused = closed_port_url()
    with FaultServer([ok("hi")]) as server:
        forge = forge_on(refused, server)
        forge.chat("hello")
    parsed = families(prometheus_text(forge.stats()))
    assert parsed["forge_attempts"].type == "counter"
    assert samples(parsed["forge_attempts"]) == {
        (("model", "m"), ("provider", "openai")): 1,
        (("model", "m"), ("provider", "openrouter")): 1,
    }
    assert samples(parsed["forge_attempt_failures"]) == {
        (("kind", "unavailable"), ("model", "m"), ("provider", "openai")): 1
    }
    latency = samples(parsed["forge_attempt_latency_seconds"])
    assert set(latency) == {
        (("model", "m"), ("provider", "openrouter"), ("quantile", q))
        for q in ("0.5", "0.9", "0.99")
    }
    assert all(value > 0 for value in latency.values())
    assert (
        samples(parsed["forge_tokens"])[
            (("model", "m"), ("provider", "openrouter"), ("type", "input"))
        ]
        == 3
    )
    assert samples(parsed["forge_routed_tokens"]) == {
        (("where", "cloud"),): 7,
        (("where", "local"),): 0,
    }
    assert samples(parsed["forge_local_token_share"]) == {(): 0.0}
    assert samples(parsed["forge_unpriced_tokens"]) == {(): 7}
    circuits = samples(parsed["forge_circuit_state"])
    assert circuits[(("endpoint", refused), ("state", "closed"))] == 1
    assert circuits[(("endpoint", refused), ("state", "open"))] == 0
    assert samples(parsed["forge_circuit_consecutive_failures"])[(("endpoint", refused),)] == 1
    assert samples(parsed["forge_deployment_in_flight"]) == {
        (("deployment", "openai"),): 0,
        (("deployment", "openrouter"),): 0,
    }
    [(labels, seconds)] = samples(parsed["forge_deployment_latency_seconds"]).items()
    assert labels == (("deployment", "openrouter"), ("model", "m")) and seconds > 0


def test_label_values_are_escaped_and_credentials_never_shown() -> None:
    stats = {
        "models": {'openai:we"ird\\model': {"requests": 1, "successes": 1, "failures": {}}},
        "circuits": {
            "https://user:secret@example.com/v1": {
                "state": "open",
                "consecutive_failures": 3,
                "times_opened": 1,
            }
        },
    }
    text = prometheus_text(stats)
    assert "secret" not in text
    parsed = families(text)
    assert samples(parsed["forge_attempts"]) == {
        (("model", 'we"ird\\model'), ("provider", "openai")): 1
    }
    assert samples(parsed["forge_circuit_opened"]) == {(("endpoint", "https://example.com/v1"),): 1}


def test_forge_stats_prometheus_prints_text_exposition(tmp_path: Path) -> None:
    with FaultServer([ok("hi")]) as server:
        config = write_config(
            tmp_path / "forge.yaml",
            {
                "providers": {
                    "cloud": {
                        "openai": {
                            "base_url": server.base_url,
                            "api_key_env": None,
                            "default_model": "m",
                        }
                    },
                    "fallback": {"order": ["openai"]},
                },
                "model_preferences": {"local_first": False},
            },
        )
        result = invoke("stats", "--after-chat", "hello", "--prometheus", "-c", str(config))
    assert result.exit_code == 0, result.output
    parsed = families(result.stdout)
    assert samples(parsed["forge_attempt_successes"]) == {
        (("model", "m"), ("provider", "openai")): 1
    }
    assert (
        samples(parsed["forge_tokens"])[
            (("model", "m"), ("provider", "openai"), ("type", "output"))
        ]
        == 4
    )
    assert "forge_spend_usd" in parsed


def test_bare_forge_stats_prometheus_is_still_valid_text(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "forge.yaml",
        {
            "providers": {
                "local": {"ollama": {"base_url": closed_port_url()}},
                "fallback": {"order": ["ollama"]},
            }
        },
    )
    result = invoke("stats", "--prometheus", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "per process" in result.stderr
    parsed = families(result.stdout)
    assert samples(parsed["forge_routed_tokens"]) == {
        (("where", "cloud"),): 0,
        (("where", "local"),): 0,
    }


def test_the_documented_metrics_endpoint_exposes_genai_and_forge_metrics() -> None:
    # docs/observability.md: OpenTelemetry's Prometheus exporter on a MeterProvider.
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    set_telemetry_providers(meter_provider=meter_provider)
    try:
        with FaultServer([ok("hi")]) as server:
            forge = forge_on(closed_port_url(), server)
            forge.chat("hello")
        text = generate_latest(registry).decode()
    finally:
        set_telemetry_providers()
        meter_provider.shutdown()
    parsed = families(text)
    duration = parsed["gen_ai_client_operation_duration_seconds"]
    assert duration.type == "histogram"
    (count,) = [s for s in duration.samples if s.name.endswith("_count")]
    assert count.value == 1
    assert count.labels["gen_ai_provider_name"] == Provider.OPENROUTER.value
    assert count.labels["gen_ai_operation_name"] == "chat"
    buckets = [s for s in duration.samples if s.name.endswith("_bucket")]
    assert {s.labels["le"] for s in buckets} >= {"0.01", "81.92", "+Inf"}
    tokens = parsed["gen_ai_client_token_usage"]
    assert {s.labels["gen_ai_token_type"] for s in tokens.samples} == {"input", "output"}
    fallbacks = {
        tuple(pair for pair in labels if not pair[0].startswith("otel_scope_")): value
        for labels, value in samples(parsed["forge_router_fallbacks"]).items()
    }
    assert fallbacks == {
        (
            ("forge_fallback_from", "openai"),
            ("forge_fallback_to", "openrouter"),
            ("gen_ai_operation_name", "chat"),
        ): 1
    }
