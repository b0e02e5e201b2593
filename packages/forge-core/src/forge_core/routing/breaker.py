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

With a `SharedState` (``routing.state.backend: redis``) the fields are also the fleet's: each
read first adopts a newer shared record (read through a cache a few ms fresh), each change is
written back, and the half-open probe also needs the fleet's one probe lease. While the store
is away the breaker works on its own fields alone, as with memory state.

A breaker counts the failures it is told of; what it is told is decided in `Route.failed`: one
failure per request and endpoint however often the request was retried (a probe and a timeout
trip always count), and none for an error that says the request itself was bad.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from typing import Any

from forge_core.config.schema import RoutingConfig
from forge_core.routing.retry import Clock, SystemClock
from forge_core.state.base import BreakerRecord, SharedState

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
        shared: SharedState | None = None,
        probe_lease: float = 300.0,
        not_closed: set[str] | None = None,
    ) -> None:
        self.name = name
        #: The names of the breakers (of one registry) that are not closed now, kept by each.
        self._not_closed = not_closed if not_closed is not None else set()
        self._shared = shared
        self._probe_lease = probe_lease
        self._version = 0
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

    def _sync(self, *, fresh: bool = False) -> None:
        """Adopt the shared record when it is newer than what this breaker last saw."""
        if self._shared is None:
            return
        record = self._shared.load_breaker(self.name, fresh=fresh)
        if record is None or record.version <= self._version:
            return
        self._version = record.version
        self._state = CircuitState(record.state)
        self._failures = record.failures
        self._cooldown = record.cooldown
        self._times_opened = record.times_opened
        self._opened_at = self._clock.monotonic() - max(time.time() - record.opened_at, 0.0)
        if self._state is CircuitState.CLOSED:
            self._probe_in_flight = False
            self._not_closed.discard(self.name)
        else:
            self._not_closed.add(self.name)

    def _publish(self) -> None:
        """Write this breaker's fields as the fleet's record (half-open is stored as open)."""
        if self._shared is None:
            return
        state = CircuitState.OPEN if self._state is CircuitState.HALF_OPEN else self._state
        opened_at = time.time() - (self._clock.monotonic() - self._opened_at)
        version = self._shared.save_breaker(
            self.name,
            BreakerRecord(
                state.value, self._failures, self._cooldown, opened_at, self._times_opened
            ),
        )
        if version is not None:
            self._version = version

    def _refresh(self) -> None:
        self._sync()
        self._refresh_local()

    def _refresh_local(self) -> None:
        if (
            self._state is CircuitState.OPEN
            and self._clock.monotonic() >= self._opened_at + self._cooldown
        ):
            self._state = CircuitState.HALF_OPEN
            self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        """The current state (open turns half-open once its cooldown has passed)."""
        if self._shared is None and self._state is CircuitState.CLOSED:
            return CircuitState.CLOSED  # as in `rejects`: no lock needed to read it
        with self._lock:
            self._refresh()
            return self._state

    def rejects(self) -> bool:
        """Whether a call now would be turned away (open, or half-open with a probe out)."""
        if self._shared is None and self._state is CircuitState.CLOSED:
            # Planning asks this of every deployment on every request: a closed circuit of
            # this process alone changes only on a recorded failure, so no lock is needed to
            # read it (a failure being recorded now is the same as one a moment later).
            return False
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
                if self._shared is not None:
                    return self._fleet_probe(self._shared)
                self._probe_in_flight = True
                return Ticket(probe=True)
            return None

    def _fleet_probe(self, shared: SharedState) -> Ticket | None:
        """The probe ticket if this process takes the fleet's probe lease and the circuit is
        still half-open once the record is re-read (another process may have just closed it,
        or re-opened it after its own probe)."""
        if not shared.acquire_probe(self.name, self._probe_lease):
            return None
        self._sync(fresh=True)
        self._refresh_local()
        state = self._state
        if state is CircuitState.HALF_OPEN:
            self._probe_in_flight = True
            return Ticket(probe=True)
        shared.release_probe(self.name)
        return Ticket(probe=False) if state is CircuitState.CLOSED else None

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
                changed = ticket.probe or self._failures != 0
                self._state = CircuitState.CLOSED
                self._not_closed.discard(self.name)
                self._failures = 0
                self._cooldown = self._base_cooldown
                self._probe_in_flight = False
                if changed:
                    self._publish()
            if ticket.probe and self._shared is not None:
                self._shared.release_probe(self.name)

    def record_failure(self, ticket: Ticket, *, trip: bool = False) -> None:
        """The call failed; ``trip`` opens a closed circuit at once (a stalled endpoint)."""
        with self._lock:
            self._sync()
            self._failures += 1
            if ticket.probe:
                self._probe_in_flight = False
                self._open(min(self._cooldown * 2, self._max_cooldown))
            elif self._state is CircuitState.CLOSED and (trip or self._failures >= self._threshold):
                self._open(self._cooldown)
            self._publish()
            if ticket.probe and self._shared is not None:
                self._shared.release_probe(self.name)

    def release(self, ticket: Ticket) -> None:
        """The call was abandoned (cancelled) before it said anything about the endpoint."""
        if ticket.probe:
            with self._lock:
                self._probe_in_flight = False
                if self._shared is not None:
                    self._shared.release_probe(self.name)

    def _open(self, cooldown: float) -> None:
        self._state = CircuitState.OPEN
        self._not_closed.add(self.name)
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
        shared: SharedState | None = None,
        probe_lease: float = 300.0,
    ) -> None:
        self._settings = (failure_threshold, cooldown, max_cooldown)
        self.shared = shared
        self._probe_lease = probe_lease
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._not_closed: set[str] = set()

    def all_closed(self) -> bool:
        """Whether every breaker of this process is closed now (never with shared state: the
        fleet's may not be). Planning then skips asking each one."""
        return self.shared is None and not self._not_closed

    @classmethod
    def from_config(
        cls,
        routing: RoutingConfig,
        clock: Clock | None = None,
        shared: SharedState | None = None,
    ) -> BreakerRegistry:
        """A registry using the ``routing`` section's breaker keys (and ``shared`` state, whose
        probe lease lasts at most ``total_timeout_seconds``: no probe outlives it)."""
        return cls(
            failure_threshold=routing.breaker_failure_threshold,
            cooldown=routing.breaker_cooldown_seconds,
            max_cooldown=routing.breaker_max_cooldown_seconds,
            clock=clock,
            shared=shared,
            probe_lease=routing.total_timeout_seconds,
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
                    shared=self.shared,
                    probe_lease=self._probe_lease,
                    not_closed=self._not_closed,
                )
                self._breakers[endpoint] = breaker
            return breaker

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every known endpoint's circuit (with shared state: every endpoint the fleet knows)."""
        if self.shared is not None:
            for endpoint in self.shared.breakers():
                self.get(endpoint)
        with self._lock:
            breakers = list(self._breakers.values())
        return {breaker.name: breaker.snapshot() for breaker in breakers}
