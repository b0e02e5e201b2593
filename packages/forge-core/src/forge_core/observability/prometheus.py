"""`Forge.stats()` as Prometheus text exposition (format 0.0.4), without any dependency.

For ``forge stats --prometheus`` and for an application that serves forge's own counters from
its ``/metrics`` route. The OpenTelemetry metrics (GenAI histograms with buckets) reach
Prometheus through OpenTelemetry's Prometheus exporter instead: docs/observability.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from forge_core.observability.redact import safe_url

__all__ = ["CONTENT_TYPE", "prometheus_text"]

#: The ``Content-Type`` of `prometheus_text`'s output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))
_STATES = ("closed", "open", "half_open")

Sample = tuple[Mapping[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        rows = list(samples)
        if not rows:
            return
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            text = ",".join(f'{key}="{_escape(str(item))}"' for key, item in labels.items())
            self.lines.append(
                f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"
            )


def _series_labels(key: str) -> dict[str, str]:
    provider, _, model = key.partition(":")
    return {"provider": provider, "model": model}


def prometheus_text(stats: Mapping[str, Any]) -> str:
    """``stats`` (what `Forge.stats` returns) as Prometheus text exposition.

    Families: ``forge_attempts_total``, ``forge_attempt_successes_total``,
    ``forge_attempt_failures_total`` (by ``kind``), ``forge_attempt_latency_seconds`` and
    ``forge_attempt_ttft_seconds`` (p50/p90/p99 as ``quantile``, over the recent window),
    ``forge_tokens_total`` (by ``type``), ``forge_spend_usd_total``, per ``provider`` and
    ``model``; ``forge_routed_tokens_total`` (by ``where``: local, cloud),
    ``forge_local_token_share``, ``forge_unpriced_tokens_total``; ``forge_circuit_state``
    (1 for the endpoint's state), ``forge_circuit_consecutive_failures``,
    ``forge_circuit_opened_total`` per ``endpoint``; ``forge_deployment_in_flight`` per
    ``deployment`` and ``forge_deployment_latency_seconds`` per ``deployment`` and ``model``;
    ``forge_local_model_resident_bytes``,
    ``forge_local_model_load_seconds``, ``forge_local_model_requests_total`` per loaded
    in-process ``model``, and ``forge_process_resident_bytes``.
    """
    out = _Exposition()
    models: Mapping[str, Mapping[str, Any]] = stats.get("models") or {}

    def per_model(field: str) -> Iterable[Sample]:
        for key, series in models.items():
            if field in series:
                yield _series_labels(key), series[field]

    def failures() -> Iterable[Sample]:
        for key, series in models.items():
            for kind, count in (series.get("failures") or {}).items():
                yield {**_series_labels(key), "kind": kind}, count

    def quantiles(field: str) -> Iterable[Sample]:
        for key, series in models.items():
            for name, quantile in _QUANTILES:
                value = (series.get(field) or {}).get(name)
                if value is not None:
                    yield {**_series_labels(key), "quantile": quantile}, value / 1000.0

    def tokens() -> Iterable[Sample]:
        for key, series in models.items():
            for kind in ("input", "output"):
                if f"{kind}_tokens" in series:
                    yield {**_series_labels(key), "type": kind}, series[f"{kind}_tokens"]

    out.family(
        "forge_attempts_total",
        "counter",
        "Calls to a provider and model, each retry counted.",
        per_model("requests"),
    )
    out.family(
        "forge_attempt_successes_total",
        "counter",
        "Calls to a provider and model that answered.",
        per_model("successes"),
    )
    out.family(
        "forge_attempt_failures_total",
        "counter",
        "Calls to a provider and model that failed, by kind.",
        failures(),
    )
    out.family(
        "forge_attempt_latency_seconds",
        "gauge",
        "Latency of the recent successful calls, as quantiles.",
        quantiles("latency_ms"),
    )
    out.family(
        "forge_attempt_ttft_seconds",
        "gauge",
        "Time to the first token of the recent successful calls, as quantiles.",
        quantiles("ttft_ms"),
    )
    out.family("forge_tokens_total", "counter", "Tokens of the answers, by type.", tokens())
    out.family(
        "forge_spend_usd_total",
        "counter",
        "What the answers cost in US dollars (local models: 0).",
        per_model("spend_usd"),
    )
    usage: Mapping[str, Any] = stats.get("usage") or {}
    out.family(
        "forge_routed_tokens_total",
        "counter",
        "Tokens served on this machine (local) and by cloud providers.",
        [
            ({"where": where}, usage[f"{where}_tokens"])
            for where in ("local", "cloud")
            if f"{where}_tokens" in usage
        ],
    )
    share = usage.get("local_share")
    out.family(
        "forge_local_token_share",
        "gauge",
        "The share of all tokens served locally (0 to 1).",
        [({}, share)] if share is not None else [],
    )
    out.family(
        "forge_unpriced_tokens_total",
        "counter",
        "Cloud tokens whose model has no price in the table.",
        [({}, usage["unpriced_tokens"])] if "unpriced_tokens" in usage else [],
    )

    circuits: Mapping[str, Mapping[str, Any]] = stats.get("circuits") or {}
    out.family(
        "forge_circuit_state",
        "gauge",
        "1 for the state each endpoint's circuit breaker is in, 0 for the others.",
        [
            (
                {"endpoint": safe_url(endpoint), "state": state},
                1 if circuit["state"] == state else 0,
            )
            for endpoint, circuit in circuits.items()
            for state in _STATES
        ],
    )
    out.family(
        "forge_circuit_consecutive_failures",
        "gauge",
        "Consecutive failures counted by each endpoint's circuit breaker.",
        [
            ({"endpoint": safe_url(endpoint)}, circuit["consecutive_failures"])
            for endpoint, circuit in circuits.items()
        ],
    )
    out.family(
        "forge_circuit_opened_total",
        "counter",
        "Times each endpoint's circuit breaker opened.",
        [
            ({"endpoint": safe_url(endpoint)}, circuit["times_opened"])
            for endpoint, circuit in circuits.items()
        ],
    )

    deployments: Mapping[str, Mapping[str, Any]] = stats.get("deployments") or {}
    out.family(
        "forge_deployment_in_flight",
        "gauge",
        "Attempts in flight at each deployment (what balancing counts).",
        [({"deployment": name}, load["in_flight"]) for name, load in deployments.items()],
    )
    out.family(
        "forge_deployment_latency_seconds",
        "gauge",
        "Recent latency per deployment and model (a moving average: first token of a "
        "stream, else the whole answer).",
        [
            ({"deployment": name, "model": model}, ms / 1000.0)
            for name, load in deployments.items()
            for model, ms in (load.get("latency_ms") or {}).items()
        ],
    )

    affinity: Mapping[str, int] = stats.get("affinity") or {}
    out.family(
        "forge_affinity_requests_total",
        "counter",
        "Balanced requests by what prefix affinity did: hit (it chose the deployment), "
        "miss (nothing known), load_override (its deployment was too busy).",
        [({"outcome": outcome}, count) for outcome, count in affinity.items()],
    )

    loaded: list[Mapping[str, Any]] = []
    rss: list[Sample] = []
    for backend in (stats.get("backends") or {}).values():
        if not isinstance(backend, Mapping):
            continue
        loaded.extend(backend.get("models") or [])
        if backend.get("process_rss_bytes") is not None and not rss:
            rss.append(({}, backend["process_rss_bytes"]))

    def local(field: str) -> Iterable[Sample]:
        for model in loaded:
            if model.get(field) is not None:
                labels = {"model": str(model.get("model")), "purpose": str(model.get("purpose"))}
                yield labels, model[field]

    out.family(
        "forge_local_model_resident_bytes",
        "gauge",
        "Resident memory of each loaded in-process model.",
        local("resident_bytes"),
    )
    out.family(
        "forge_local_model_load_seconds",
        "gauge",
        "How long each loaded in-process model took to load.",
        local("load_seconds"),
    )
    out.family(
        "forge_local_model_requests_total",
        "counter",
        "Requests each loaded in-process model served.",
        local("requests"),
    )
    out.family(
        "forge_process_resident_bytes",
        "gauge",
        "Resident memory of the process that runs the in-process models.",
        rss,
    )
    return "\n".join(out.lines) + "\n"
