"""Circuit breakers, one per provider endpoint (base URL).

A small state machine of our own rather than pybreaker or purgatory: forge calls one endpoint
from sync and asyncio code alike and needs one shared state for both, an injectable clock, a
cooldown that doubles on every re-opening, and exactly one half-open probe at a time under
concurrency. pybreaker's cooldown is fixed, its clock is ``datetime.now`` and its async support
is Tornado's; purgatory keeps separate sync and async factories (two states for one endpoint),
a fixed TTL and the wall clock. Neither is a dependency here.

```
closed --N consecutive failures--> open --cooldown passed--> half-open --probe ok--> closed
                                    ^                            |
                                    +------probe failed----------+  (cooldown doubles, capped)
```

Every method takes a `threading.Lock` for a few field updates and never awaits, so one
breaker is safe from threads and from any number of asyncio tasks.

A breaker counts the failures it is told of; what it is told is decided in `Route.failed`: one
failure per request and endpoint however often the request was retried (a probe and a timeout
trip always count), and none for an error that says the request itself was bad.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any

from forge_core._config import RoutingConfig
from forge_core._retry import Clock, SystemClock

__all__ = ["BreakerRegistry", "CircuitBreaker", "CircuitState", "Ticket"]


class CircuitState(enum.StrEnum):
    """Where a circuit is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Ticket:
    """Permission for one call; ``probe`` marks the single half-open trial call."""

    probe: bool


class CircuitBreaker:
    """closed -> open after ``failure_threshold`` consecutive failures -> half-open after the
    cooldown -> one probe -> closed on success, open again (cooldown doubled) on failure."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._base_cooldown = cooldown
        self._max_cooldown = max(max_cooldown, cooldown)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._cooldown = cooldown
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._times_opened = 0

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value!r})"

    def _refresh(self) -> None:
        if (
            self._state is CircuitState.OPEN
            and self._clock.monotonic() >= self._opened_at + self._cooldown
        ):
            self._state = CircuitState.HALF_OPEN
            self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        """The current state (open turns half-open once its cooldown has passed)."""
        with self._lock:
            self._refresh()
            return self._state

    def rejects(self) -> bool:
        """Whether a call now would be turned away (open, or half-open with a probe out)."""
        with self._lock:
            self._refresh()
            return self._state is CircuitState.OPEN or (
                self._state is CircuitState.HALF_OPEN and self._probe_in_flight
            )

    def admit(self) -> Ticket | None:
        """A ticket for one call, or None when the circuit turns the call away."""
        with self._lock:
            self._refresh()
            if self._state is CircuitState.CLOSED:
                return Ticket(probe=False)
            if self._state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return Ticket(probe=True)
            return None

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when it is not open)."""
        with self._lock:
            self._refresh()
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(self._opened_at + self._cooldown - self._clock.monotonic(), 0.0)

    def record_success(self, ticket: Ticket) -> None:
        """The call answered: a probe closes the circuit; any success resets the count."""
        with self._lock:
            if ticket.probe or self._state is CircuitState.CLOSED:
                self._state = CircuitState.CLOSED
                self._failures = 0
                self._cooldown = self._base_cooldown
                self._probe_in_flight = False

    def record_failure(self, ticket: Ticket, *, trip: bool = False) -> None:
        """The call failed; ``trip`` opens a closed circuit at once (a stalled endpoint)."""
        with self._lock:
            self._failures += 1
            if ticket.probe:
                self._probe_in_flight = False
                self._open(min(self._cooldown * 2, self._max_cooldown))
            elif self._state is CircuitState.CLOSED and (trip or self._failures >= self._threshold):
                self._open(self._cooldown)

    def release(self, ticket: Ticket) -> None:
        """The call was abandoned (cancelled) before it said anything about the endpoint."""
        if ticket.probe:
            with self._lock:
                self._probe_in_flight = False

    def _open(self, cooldown: float) -> None:
        self._state = CircuitState.OPEN
        self._cooldown = cooldown
        self._opened_at = self._clock.monotonic()
        self._times_opened += 1

    def snapshot(self) -> dict[str, Any]:
        """State, consecutive failures, current cooldown and times opened, for `Forge.stats`."""
        with self._lock:
            self._refresh()
            retry_in = (
                max(self._opened_at + self._cooldown - self._clock.monotonic(), 0.0)
                if self._state is CircuitState.OPEN
                else 0.0
            )
            return {
                "state": self._state.value,
                "consecutive_failures": self._failures,
                "cooldown_seconds": self._cooldown,
                "retry_in_seconds": retry_in,
                "times_opened": self._times_opened,
            }


class BreakerRegistry:
    """One `CircuitBreaker` per endpoint, created on first use with the configured limits."""

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        clock: Clock | None = None,
    ) -> None:
        self._settings = (failure_threshold, cooldown, max_cooldown)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    @classmethod
    def from_config(cls, routing: RoutingConfig, clock: Clock | None = None) -> BreakerRegistry:
        """A registry using the ``routing`` section's breaker keys."""
        return cls(
            failure_threshold=routing.breaker_failure_threshold,
            cooldown=routing.breaker_cooldown_seconds,
            max_cooldown=routing.breaker_max_cooldown_seconds,
            clock=clock,
        )

    def get(self, endpoint: str) -> CircuitBreaker:
        """The breaker of ``endpoint``."""
        with self._lock:
            breaker = self._breakers.get(endpoint)
            if breaker is None:
                threshold, cooldown, max_cooldown = self._settings
                breaker = CircuitBreaker(
                    endpoint,
                    failure_threshold=threshold,
                    cooldown=cooldown,
                    max_cooldown=max_cooldown,
                    clock=self._clock,
                )
                self._breakers[endpoint] = breaker
            return breaker

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every known endpoint's circuit."""
        with self._lock:
            breakers = list(self._breakers.values())
        return {breaker.name: breaker.snapshot() for breaker in breakers}
