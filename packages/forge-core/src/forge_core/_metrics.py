"""Per provider-and-model counters and latency percentiles, for `Forge.stats()`."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Metrics"]

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


class Metrics:
    """Thread-safe counters: one series per ``provider:model``, one count per attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

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

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every series: requests, successes, failures by kind, latency and TTFT percentiles."""
        with self._lock:
            return {
                key: {
                    "requests": series.requests,
                    "successes": series.successes,
                    "failures": dict(series.failures),
                    "latency_ms": _percentiles(series.latency_ms),
                    "ttft_ms": _percentiles(series.ttft_ms),
                }
                for key, series in self._series.items()
            }
