"""Rate budgets: requests and tokens per minute a deployment may be sent (``rpm``, ``tpm``).

A provider's rate limit is per API key, shared by every process that uses the key, and a
request over it costs a 429. forge counts what it sends against the budget it was told, so it
never sends a request it knows would be over: the router asks `RateBudgets.take` before an
attempt; refused, the candidate is skipped (a `Drop` saying when the budget frees) and the next
one is tried; only when every candidate was refused for its budget does the request wait.

The window slides: a budget admits at most ``rpm`` requests, and ``tpm`` tokens, in any 60
seconds (a log of what was sent, not per-minute buckets, which admit twice the budget across a
minute boundary). Tokens are not known before the answer, so a request reserves an estimate
(prompt characters / 4, plus ``max_tokens`` or `DEFAULT_ANSWER_TOKENS`) and `settle` replaces it
with the usage the provider reported.

Counted per deployment and API key (a fingerprint, never the key): with ``routing.state:
redis`` every process counts in one log per budget, atomically (one Lua script); while Redis is
away, each process counts alone in its own log.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forge_core.routing.retry import Clock, SystemClock

if TYPE_CHECKING:
    from forge_core.state.base import SharedState

__all__ = ["Budget", "RateBudgets", "Reservation", "estimate_tokens"]

#: The sliding window every budget is counted over.
WINDOW_SECONDS = 60.0
#: Tokens reserved for an answer when the request sets no ``max_tokens``.
DEFAULT_ANSWER_TOKENS = 256


@dataclass(frozen=True)
class Budget:
    """What one deployment may be sent per minute; None: no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None

    def __bool__(self) -> bool:
        return self.rpm is not None or self.tpm is not None


@dataclass
class Reservation:
    """One request counted against a budget (``tokens`` reserved until `RateBudgets.settle`)."""

    key: str
    member: str
    tokens: int
    #: Where it was counted: in Redis (the fleet's log) or in this process's log.
    shared: bool


def estimate_tokens(texts: Sequence[str], max_tokens: int | None) -> int:
    """Tokens a request may use: its text at about four characters a token, plus the answer."""
    prompt = sum(len(text) for text in texts)
    answer = max_tokens if max_tokens is not None else DEFAULT_ANSWER_TOKENS
    return math.ceil(prompt / 4) + answer


@dataclass
class _Log:
    #: (time sent, tokens, member), oldest first.
    sent: deque[tuple[float, int, str]] = field(default_factory=deque)


class RateBudgets:
    """The budgets of one router: counted in ``shared`` (Redis) when given and answering,
    else in this process (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        shared: SharedState | None = None,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self._clock = clock or SystemClock()
        self._shared = shared
        self._window = window
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}

    def take(self, key: str, budget: Budget, tokens: int) -> tuple[Reservation | None, float]:
        """Count one request of ``tokens`` against ``key``'s ``budget``.

        Returns the reservation and 0.0, or None and the seconds until the budget would admit
        it (``math.inf`` when it never can: more tokens than ``tpm``).
        """
        member = uuid.uuid4().hex[:16]
        if self._shared is not None:
            taken = self._shared.take_budget(
                key, budget.rpm or 0, budget.tpm or 0, tokens, member, self._window
            )
            if taken is not None:
                ok, wait = taken
                return (Reservation(key, member, tokens, shared=True), 0.0) if ok else (None, wait)
        return self._take_here(key, budget, tokens, member)

    def settle(self, reservation: Reservation, tokens: int) -> None:
        """Replace the tokens ``reservation`` reserved by the ``tokens`` actually used."""
        if tokens == reservation.tokens:
            return
        if reservation.shared:
            if self._shared is not None:
                self._shared.settle_budget(
                    reservation.key, reservation.member, reservation.tokens, tokens
                )
            return
        with self._lock:
            log = self._logs.get(reservation.key)
            if log is None:
                return
            for index, (sent, _, member) in enumerate(log.sent):
                if member == reservation.member:
                    log.sent[index] = (sent, tokens, member)
                    break
        reservation.tokens = tokens

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per budget key: ``requests`` and ``tokens`` in the window (the fleet's, with shared
        state that answers; this process's otherwise)."""
        if self._shared is not None:
            fleet = self._shared.budgets(self._window)
            if fleet is not None:
                return fleet
        now = self._clock.monotonic()
        with self._lock:
            for log in self._logs.values():
                self._prune(log, now)
            return {
                key: {"requests": len(log.sent), "tokens": sum(t for _, t, _ in log.sent)}
                for key, log in self._logs.items()
            }

    def _take_here(
        self, key: str, budget: Budget, tokens: int, member: str
    ) -> tuple[Reservation | None, float]:
        if budget.tpm is not None and tokens > budget.tpm:
            return None, math.inf
        now = self._clock.monotonic()
        with self._lock:
            log = self._logs.setdefault(key, _Log())
            self._prune(log, now)
            wait = 0.0
            sent = log.sent
            if budget.rpm is not None and len(sent) >= budget.rpm:
                # The request whose expiry leaves room for one more.
                wait = sent[len(sent) - budget.rpm][0] + self._window - now
            if budget.tpm is not None:
                over = sum(t for _, t, _ in sent) + tokens - budget.tpm
                freed = 0
                for when, used, _ in sent:
                    if over <= 0:
                        break
                    freed += used
                    if freed >= over:
                        wait = max(wait, when + self._window - now)
                        break
            if wait > 0:
                return None, wait
            sent.append((now, tokens, member))
        return Reservation(key, member, tokens, shared=False), 0.0

    def _prune(self, log: _Log, now: float) -> None:
        while log.sent and log.sent[0][0] <= now - self._window:
            log.sent.popleft()
