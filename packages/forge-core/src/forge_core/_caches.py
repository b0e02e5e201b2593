"""The bounded caches a router keeps of what repeats on every request (planning, telemetry).

Their keys include the model names requests pin, which are the callers' text, so each is
emptied when it is full rather than left to grow; refilling one costs what the first request
of each kind cost.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["CACHE_LIMIT", "put_bounded"]

K = TypeVar("K")
V = TypeVar("V")

#: The most entries one cache holds; the next one empties it first.
CACHE_LIMIT = 512


def put_bounded(cache: dict[K, V], key: K, value: V) -> V:
    """Put ``value`` in ``cache`` under ``key``, emptying the cache first when it already holds
    `CACHE_LIMIT` entries; returns ``value``."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value
