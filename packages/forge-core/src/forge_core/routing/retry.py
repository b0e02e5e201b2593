"""Retrying one candidate: which errors, how long to wait, when to stop — built on tenacity.

One place decides all of it: `RetryPolicy.should_retry` (which errors, and when to fail over
instead), `_Backoff` (exponential with jitter, or the provider's ``Retry-After``) and
`_StopWhen` (attempt budget, the request's overall deadline, and the circuit breaker).
The clock is injectable (`Clock`) so tests never sleep for real.

`RetryPolicy.attempts` makes the first attempt without tenacity (nearly every call succeeds on
it, and building a tenacity loop per call is a measurable share of forge's overhead); from the
first retryable failure on, tenacity drives the rest with that failure as its attempt 1, so the
backoff, stop and retry decisions are tenacity's, exactly as if it had run from the start.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    AttemptManager,
    DoAttempt,
    DoSleep,
    RetryCallState,
    Retrying,
    retry_if_exception,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from forge_core.config.schema import RoutingConfig
from forge_core.errors import (
    ForgeTimeout,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)

__all__ = ["Clock", "FirstAttempt", "RetryPolicy", "RetryScope", "SystemClock"]


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

    #: `time.monotonic` itself: no Python frame between the router and the clock it reads
    #: several times a request.
    monotonic = staticmethod(time.monotonic)

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
    #: ``routing.retry_before_failover``: ``never``, ``local`` or ``always``.
    retry_before_failover: str = "never"

    @classmethod
    def from_config(cls, routing: RoutingConfig) -> RetryPolicy:
        """The policy the config describes."""
        return cls(
            max_retries=routing.max_retries,
            initial_backoff=routing.retry_initial_backoff_seconds,
            max_backoff=routing.retry_max_backoff_seconds,
            jitter=routing.retry_jitter_seconds,
            retry_after_cap=routing.retry_after_cap_seconds,
            retry_before_failover=routing.retry_before_failover,
        )

    def should_retry(self, exc: BaseException, *, has_fallback: bool, local: bool = False) -> bool:
        """Whether to call the same candidate again after ``exc``.

        Only retryable provider errors are retried; a refused connection (nothing listens
        there: the circuit breaker, not a backoff, waits for it to come back) and a
        ``Retry-After`` beyond the cap never are. While another candidate is left, nothing is
        retried by default: a 5xx, a rate limit, a timeout, a dropped connection or a
        malformed answer fails over at once, because waiting out a failing, busy or stalled
        endpoint costs more than asking the next one (LangChain's ``with_fallbacks`` answers
        from the fallback at once too). ``retry_before_failover`` keeps retrying a transient
        server answer (HTTP 5xx other than 529) first: on a ``local`` candidate, or on any
        (``always``). The last candidate is retried with backoff.
        """
        if not isinstance(exc, ProviderError) or not exc.retryable or _refused(exc):
            return False
        if isinstance(exc, RateLimited):
            if exc.retry_after is not None and exc.retry_after > self.retry_after_cap:
                return False
            return not has_fallback
        if has_fallback:
            wanted = self.retry_before_failover == "always" or (
                self.retry_before_failover == "local" and local
            )
            transient = exc.status_code is not None and not isinstance(exc, MalformedResponse)
            return wanted and transient and not isinstance(exc, ForgeTimeout)
        return True

    def backoff(self, attempt_number: int, exc: BaseException | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt_number`` (1-based)."""
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_cap)
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt_number - 1))
        return base + rng.uniform(0, self.jitter)

    def attempts(self, scope: RetryScope) -> Iterator[FirstAttempt | AttemptManager]:
        """The attempts at one candidate, each a context manager around one call (sync).

        Use as ``for attempt in policy.attempts(scope): with attempt: return call()``. A
        retryable error leaves the ``with`` and the loop waits and tries again; any other
        error, or the last retryable one, propagates.
        """
        first = FirstAttempt(self, scope)
        yield first
        if first.error is None:
            return
        retrying = Retrying(sleep=scope.clock.sleep, **self._tenacity_args(scope))
        state = first.handed_to(retrying)
        while True:
            do = retrying.iter(retry_state=state)
            if isinstance(do, DoAttempt):
                yield AttemptManager(retry_state=state)
            elif isinstance(do, DoSleep):
                state.prepare_for_next_attempt()
                retrying.sleep(do)
            else:
                return

    async def aattempts(
        self, scope: RetryScope
    ) -> AsyncGenerator[FirstAttempt | AttemptManager, None]:
        """Async `attempts` (the waits are ``await``ed)."""
        first = FirstAttempt(self, scope)
        yield first
        if first.error is None:
            return
        retrying = AsyncRetrying(sleep=scope.clock.asleep, **self._tenacity_args(scope))
        state = first.handed_to(retrying)
        while True:
            do = await retrying.iter(retry_state=state)
            if isinstance(do, DoAttempt):
                yield AttemptManager(retry_state=state)
            elif isinstance(do, DoSleep):
                state.prepare_for_next_attempt()
                await retrying.sleep(do)  # type: ignore[misc]
            else:
                return

    def _tenacity_args(self, scope: RetryScope) -> dict[str, Any]:
        """What the sync and async retry loops share: which errors, how long, when to stop."""
        return {
            "retry": retry_if_exception(
                lambda exc: self.should_retry(
                    exc, has_fallback=scope.has_fallback, local=scope.local
                )
            ),
            "wait": _Backoff(self, scope.rng),
            "stop": _StopWhen(
                self.max_retries + 1, scope.clock, scope.deadline, scope.circuit_allows
            ),
            "reraise": True,
        }


@dataclass(frozen=True)
class RetryScope:
    """One candidate of one request, as retrying sees it."""

    clock: Clock
    #: The request's overall deadline, on ``clock``.
    deadline: float
    #: Whether another candidate is left (then fewer errors are retried: `should_retry`).
    has_fallback: bool
    #: Whether the candidate runs on the user's own hardware (``retry_before_failover``).
    local: bool
    rng: random.Random
    #: False once the candidate's circuit opened: no more attempts.
    circuit_allows: Callable[[], bool]


class FirstAttempt:
    """A candidate's first attempt: keeps a retryable error for tenacity, lets others out."""

    __slots__ = ("_policy", "_scope", "error")

    def __init__(self, policy: RetryPolicy, scope: RetryScope) -> None:
        self._policy = policy
        self._scope = scope
        self.error: ProviderError | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        scope = self._scope
        if isinstance(exc, ProviderError) and self._policy.should_retry(
            exc, has_fallback=scope.has_fallback, local=scope.local
        ):
            self.error = exc
            return True
        return False

    def handed_to(self, retrying: Retrying | AsyncRetrying) -> RetryCallState:
        """``retrying``'s state with this attempt recorded as its failed attempt 1."""
        assert self.error is not None
        retrying.begin()
        state = RetryCallState(retrying, fn=None, args=(), kwargs={})
        state.set_exception((type(self.error), self.error, self.error.__traceback__))
        return state


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
