"""Per provider-and-model counters, latency percentiles, tokens and spend, for `Forge.stats()`."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AFFINITY_HIT",
    "AFFINITY_LOAD_OVERRIDE",
    "AFFINITY_MISS",
    "AFFINITY_OUTCOMES",
    "Metrics",
]

#: Latencies kept per provider and model; percentiles describe the most recent calls.
WINDOW = 1024


def _percentiles(samples: deque[float]) -> dict[str, float | None]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None}

    def rank(q: float) -> float:
        return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99)}


@dataclass
class _Series:
    requests: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    ttft_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    input_tokens: int = 0
    output_tokens: int = 0
    spend_usd: float = 0.0


@dataclass
class _Usage:
    local_tokens: int = 0
    cloud_tokens: int = 0
    unpriced_tokens: int = 0
    spend_usd: float = 0.0


#: A balanced request's prefix-affinity outcome: affinity chose its deployment.
AFFINITY_HIT = "hit"
#: Nothing known of the request: load (or spreading) chose.
AFFINITY_MISS = "miss"
#: The deployment holding the request's prompt (or its key's) was too busy.
AFFINITY_LOAD_OVERRIDE = "load_override"
#: Each outcome -> its name in `Metrics.affinity_counts` (OpenTelemetry counts the same
#: outcomes when a traced request ends, `forge_core.observability.traced`).
AFFINITY_OUTCOMES = {
    AFFINITY_HIT: "hits",
    AFFINITY_MISS: "misses",
    AFFINITY_LOAD_OVERRIDE: "load_overrides",
}


class Metrics:
    """Thread-safe counters: one series per ``provider:model``, one count per attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}
        self._usage = _Usage()
        #: Balanced requests by what affinity did: hit, miss, load_override.
        self._affinity = dict.fromkeys(AFFINITY_OUTCOMES, 0)

    def record(
        self,
        key: str,
        *,
        ok: bool,
        kind: str | None = None,
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
    ) -> None:
        """Count one finished attempt against ``key`` (``provider:model``)."""
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            series.requests += 1
            if ok:
                series.successes += 1
            else:
                series.failures[kind or "unknown"] += 1
            if latency_ms is not None:
                series.latency_ms.append(latency_ms)
            if ttft_ms is not None:
                series.ttft_ms.append(ttft_ms)

    def record_usage(
        self,
        key: str,
        *,
        local: bool,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
    ) -> None:
        """Count one answer's tokens and cost against ``key``; ``cost_usd`` None: unpriced."""
        tokens = input_tokens + output_tokens
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            series.input_tokens += input_tokens
            series.output_tokens += output_tokens
            usage = self._usage
            if local:
                usage.local_tokens += tokens
            else:
                usage.cloud_tokens += tokens
            if cost_usd is None:
                usage.unpriced_tokens += tokens
            else:
                series.spend_usd += cost_usd
                usage.spend_usd += cost_usd

    def affinity(self, outcome: str) -> None:
        """Count one balanced request's affinity ``outcome``: ``hit`` (affinity chose its
        deployment), ``miss`` (nothing known) or ``load_override`` (its holder was too busy)."""
        with self._lock:
            self._affinity[outcome] += 1

    def affinity_counts(self) -> dict[str, int]:
        """Balanced requests by affinity outcome: ``hits``, ``misses``, ``load_overrides``."""
        with self._lock:
            return {name: self._affinity[outcome] for outcome, name in AFFINITY_OUTCOMES.items()}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every series: requests, successes, failures by kind, latency and TTFT percentiles,
        tokens in and out and the spend in USD."""
        with self._lock:
            return {
                key: {
                    "requests": series.requests,
                    "successes": series.successes,
                    "failures": dict(series.failures),
                    "latency_ms": _percentiles(series.latency_ms),
                    "ttft_ms": _percentiles(series.ttft_ms),
                    "input_tokens": series.input_tokens,
                    "output_tokens": series.output_tokens,
                    "spend_usd": series.spend_usd,
                }
                for key, series in self._series.items()
            }

    def usage(self) -> dict[str, Any]:
        """Tokens served locally and by the cloud, the local share of all tokens (None before
        any), the spend in USD, and the cloud tokens whose model has no price."""
        with self._lock:
            usage = self._usage
            total = usage.local_tokens + usage.cloud_tokens
            return {
                "local_tokens": usage.local_tokens,
                "cloud_tokens": usage.cloud_tokens,
                "local_share": usage.local_tokens / total if total else None,
                "spend_usd": usage.spend_usd,
                "unpriced_tokens": usage.unpriced_tokens,
            }
