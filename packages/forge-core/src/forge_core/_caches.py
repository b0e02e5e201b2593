"""The bounded caches a router keeps of what repeats on every request (planning, telemetry).

Their keys include the model names requests pin, which are the callers' text, so each is
emptied when it is full rather than left to grow; refilling one costs what the first request
of each kind cost.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["CACHE_LIMIT", "remember"]

K = TypeVar("K")
V = TypeVar("V")

#: The most entries one cache holds; the next one empties it first.
CACHE_LIMIT = 512


def remember(cache: dict[K, V], key: K, value: V) -> V:
    """Keep ``value`` in ``cache`` under ``key`` (emptying a full cache first); returns it."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value
