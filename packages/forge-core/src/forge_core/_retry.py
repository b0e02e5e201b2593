"""Retrying one candidate: which errors, how long to wait, when to stop — built on tenacity.

One place decides all of it: `RetryPolicy.should_retry` (which errors, and when to fail over
instead), `_Backoff` (exponential with jitter, or the provider's ``Retry-After``) and
`_StopWhen` (attempt budget, the request's overall deadline, and the circuit breaker).
The clock is injectable (`Clock`) so tests never sleep for real.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from forge_core._config import RoutingConfig
from forge_core._exceptions import (
    ForgeTimeout,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

__all__ = ["Clock", "RetryPolicy", "SystemClock"]


class Clock(Protocol):
    """Where the router reads the time and sleeps; tests pass a fake one."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.sleep`, `asyncio.sleep`."""

    def monotonic(self) -> float:
        """`time.monotonic`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """`time.sleep`."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How one candidate is retried (the ``routing`` section's retry keys)."""

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    retry_after_cap: float = 30.0

    @classmethod
    def from_config(cls, routing: RoutingConfig) -> RetryPolicy:
        """The policy the config describes."""
        return cls(
            max_retries=routing.max_retries,
            initial_backoff=routing.retry_initial_backoff_seconds,
            max_backoff=routing.retry_max_backoff_seconds,
            jitter=routing.retry_jitter_seconds,
            retry_after_cap=routing.retry_after_cap_seconds,
        )

    def should_retry(self, exc: BaseException, *, has_fallback: bool) -> bool:
        """Whether to call the same candidate again after ``exc``.

        Only retryable provider errors are retried; a refused connection (nothing listens
        there: the circuit breaker, not a backoff, waits for it to come back) and a
        ``Retry-After`` beyond the cap never are. With another candidate left, only a transient
        server answer (HTTP 5xx other than 529) is retried here; a rate limit (429/529), a timeout, a refused
        or dropped connection and a malformed answer fail over at once — waiting out a busy,
        stalled or dead endpoint costs more than asking the next one.
        """
        if not isinstance(exc, ProviderError) or not exc.retryable or _refused(exc):
            return False
        if isinstance(exc, RateLimited):
            if exc.retry_after is not None and exc.retry_after > self.retry_after_cap:
                return False
            return not has_fallback
        if has_fallback:
            transient = exc.status_code is not None and not isinstance(exc, MalformedResponse)
            return transient and not isinstance(exc, ForgeTimeout)
        return True

    def backoff(self, attempt_number: int, exc: BaseException | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt_number`` (1-based)."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_cap)
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt_number - 1))
        return base + rng.uniform(0, self.jitter)

    def retrying(
        self,
        *,
        clock: Clock,
        deadline: float,
        has_fallback: bool,
        rng: random.Random,
        circuit_allows: Callable[[], bool],
    ) -> Retrying:
        """A tenacity `Retrying` for one candidate of one request (sync)."""
        return Retrying(
            sleep=clock.sleep,
            **self._tenacity_args(clock, deadline, has_fallback, rng, circuit_allows),
        )

    def aretrying(
        self,
        *,
        clock: Clock,
        deadline: float,
        has_fallback: bool,
        rng: random.Random,
        circuit_allows: Callable[[], bool],
    ) -> AsyncRetrying:
        """A tenacity `AsyncRetrying` for one candidate of one request."""
        return AsyncRetrying(
            sleep=clock.asleep,
            **self._tenacity_args(clock, deadline, has_fallback, rng, circuit_allows),
        )

    def _tenacity_args(
        self,
        clock: Clock,
        deadline: float,
        has_fallback: bool,
        rng: random.Random,
        circuit_allows: Callable[[], bool],
    ) -> dict[str, Any]:
        """What the sync and async retry loops share: which errors, how long, when to stop."""
        return {
            "retry": retry_if_exception(
                lambda exc: self.should_retry(exc, has_fallback=has_fallback)
            ),
            "wait": _Backoff(self, rng),
            "stop": _StopWhen(self.max_retries + 1, clock, deadline, circuit_allows),
            "reraise": True,
        }


def _refused(exc: ProviderError) -> bool:
    return isinstance(exc, ProviderUnavailable) and exc.refused


class _Backoff(wait_base):
    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        return self._policy.backoff(retry_state.attempt_number, exc, self._rng)


class _StopWhen(stop_base):
    """Stop after ``attempts``, when the wait would cross the deadline, or once the circuit opened."""

    def __init__(
        self, attempts: int, clock: Clock, deadline: float, circuit_allows: Callable[[], bool]
    ) -> None:
        self._attempts = attempts
        self._clock = clock
        self._deadline = deadline
        self._circuit_allows = circuit_allows

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self._attempts:
            return True
        if self._clock.monotonic() + retry_state.upcoming_sleep >= self._deadline:
            return True
        return not self._circuit_allows()
