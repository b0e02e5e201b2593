"""A clock for routing tests: real monotonic time plus an offset that `sleep` advances.

Providers bound requests with the real `time.monotonic`, so the fake clock runs alongside it
instead of from zero; sleeping only moves the offset (and is recorded), never waits.
"""

from __future__ import annotations

import threading
import time

__all__ = ["FakeClock"]


class FakeClock:
    """Injectable `forge_core.routing.retry.Clock` whose sleeps cost no time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offset = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Real monotonic time plus every sleep and `advance` so far."""
        with self._lock:
            return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self.offset += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance instead of waiting."""
        with self._lock:
            self.sleeps.append(seconds)
            self.offset += seconds

    async def asleep(self, seconds: float) -> None:
        """Async `sleep` (yields to the loop once, waits for nothing)."""
        self.sleep(seconds)
        import asyncio

        await asyncio.sleep(0)
