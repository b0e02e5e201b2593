"""The local-model gauges: what each loaded in-process model holds and how long it took to load.

Every router's observer is watched here (`watch`) while it lives; when a metric reader
collects, the gauges' callbacks (`model_memory`, `model_load_time`, registered by
`Instruments`) ask each watched router's backends for their ``stats()`` and report every
loaded model once (``forge.local.model.memory``, ``forge.local.model.load_time``).
OpenTelemetry is imported by the callbacks only, which only a reader calls.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["WithBackends", "model_load_time", "model_memory", "watch"]

logger = logging.getLogger("forge.telemetry")


class WithBackends(Protocol):
    """A router's observer, as far as the gauges read it (`Telemetry` fits)."""

    @property
    def backends(self) -> Mapping[str, Any]:
        """The router's backends by name; those with a ``stats()`` report their loaded models."""
        ...


_live: weakref.WeakSet[WithBackends] = weakref.WeakSet()


def watch(observer: WithBackends) -> None:
    """Report the loaded models of ``observer``'s backends in the gauges while it lives."""
    _live.add(observer)


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


def model_memory(options: Any) -> Iterable[Any]:
    """The ``forge.local.model.memory`` gauge's callback: resident bytes of each loaded model."""
    return list(_gauge("resident_bytes"))


def model_load_time(options: Any) -> Iterable[Any]:
    """The ``forge.local.model.load_time`` gauge's callback: seconds each loaded model took."""
    return list(_gauge("load_seconds"))
