"""Where routing state lives: this process (``memory``, the default) or a shared store.

`CircuitBreaker`, `BreakerRegistry` and `HealthCache` keep their state in their own fields, as
they always have; that *is* the memory store. With ``routing.state.backend: redis`` they are
also given a `SharedState` (`forge_core.state.redis.RedisState`), which they read through
(a local view, fresh for ``cache_ttl_seconds``) and write to on every change, so every process
on the same Redis and key prefix sees one breaker and one health entry per endpoint, and one
half-open probe lease fleet-wide.

It also keeps the fleet's rate-budget logs (`forge_core.routing.budget`), and each process's attempts
in flight and recent latency per endpoint (`forge_core.routing.load.DeploymentLoad`), so balancing
sees the fleet's load, what endpoints' refusals taught (`_dialects.Lessons`), and which
endpoint served which prompts (`forge_core.routing.affinity.AffinityIndex`, prefix affinity).

A `SharedState` never blocks a request for long and never raises: each call is bounded by a
short socket timeout, and while the store is unreachable every method answers "unknown" (None,
or True for a probe lease, so the local breaker decides alone) until it is tried again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    pass

__all__ = [
    "BreakerRecord",
    "LoadSource",
    "PrefixSink",
    "SharedPrefixes",
    "SharedState",
    "mask_url",
]


@dataclass(frozen=True)
class BreakerRecord:
    """One endpoint's breaker as the fleet shares it.

    ``opened_at`` is wall-clock time (seconds since the epoch), since processes share no
    monotonic clock; ``version`` grows by one on every write, so a reader adopts only newer
    records.
    """

    state: str
    failures: int
    cooldown: float
    opened_at: float
    times_opened: int
    version: int = 0


#: What a process reports of its own load: endpoint -> (attempts in flight, {model: recent
#: latency in seconds}).
LoadSource = Callable[[], dict[str, tuple[int, dict[str, float]]]]


#: What another process of the fleet served: (endpoint, model, the prefix digests of the
#: message sequence, `forge_core.prefixes.prefix_digests`; how many seconds ago).
SharedPrefixes = tuple[str, str, tuple[bytes, ...], float]

#: Takes what other processes served, as the store reads it (`SharedState.learn_prefixes`).
PrefixSink = Callable[[Sequence[SharedPrefixes]], None]


class SharedState(Protocol):
    """A store of breaker records, probe leases and health entries, shared by processes."""

    @property
    def url(self) -> str:
        """Where the store is (its password masked)."""
        ...

    def available(self) -> bool:
        """Whether the store answered its last call (False while it is being skipped)."""
        ...

    def load_breaker(self, endpoint: str, *, fresh: bool = False) -> BreakerRecord | None:
        """The shared record of ``endpoint`` (from the local view unless ``fresh``); None if
        there is none or the store is away."""
        ...

    def save_breaker(self, endpoint: str, record: BreakerRecord) -> int | None:
        """Store ``record``; the version it got, None when the store is away."""
        ...

    def acquire_probe(self, endpoint: str, lease_seconds: float) -> bool:
        """Take the fleet's one half-open probe lease of ``endpoint``.

        True when this process holds it now, or when the store is away (the local breaker
        then decides alone); False when another process holds it.
        """
        ...

    def release_probe(self, endpoint: str) -> None:
        """Give back the probe lease this process holds (no-op otherwise)."""
        ...

    def breakers(self) -> dict[str, BreakerRecord]:
        """Every endpoint's shared record (the fleet view; a scan, not for the hot path)."""
        ...

    def load_health(self, endpoint: str) -> str | None:
        """The fleet's unexpired health status of ``endpoint``, None if none or away."""
        ...

    def save_health(self, endpoint: str, status: str, ttl: float) -> None:
        """Record ``status`` for ``endpoint``, expiring after ``ttl`` seconds."""
        ...

    def health(self) -> dict[str, str]:
        """Every unexpired health entry (the fleet view)."""
        ...

    def report_load(self, source: LoadSource) -> None:
        """Publish what ``source`` says this process has in flight, and its recent latency,
        with every refresh of the view (no round trip of its own)."""
        ...

    def forget_load(self, source: LoadSource) -> None:
        """Stop publishing ``source`` (its router is closed)."""
        ...

    def close(self) -> None:
        """Close the store's connections and stop its threads (`release_shared_state` calls
        it when the last router of the process using it is closed)."""
        ...

    def load_changed(self) -> None:
        """This process's load changed (an attempt ended): publish it soon, so others do not
        count an attempt that is over for long."""
        ...

    def others_in_flight(self, endpoint: str) -> int:
        """Attempts the other processes have in flight at ``endpoint`` (0 when away)."""
        ...

    def fleet_latency(self, endpoint: str, model: str) -> float | None:
        """The other processes' recent latency of ``model`` at ``endpoint`` (their mean)."""
        ...

    def share_prefixes(
        self, endpoint: str, model: str, digests: Sequence[bytes], *, limit: int, ttl: float
    ) -> None:
        """``endpoint`` served ``model`` for the message sequence of ``digests``: tell the
        fleet soon (queued: no round trip on the caller's thread), keeping at most ``limit``
        such records per endpoint, each for ``ttl`` seconds."""
        ...

    def learn_prefixes(self, sink: PrefixSink) -> None:
        """Hand ``sink`` what the other processes served at the endpoints this process
        balances over, with every refresh of the view (no round trip of its own)."""
        ...

    def forget_prefixes(self, sink: PrefixSink) -> None:
        """Stop handing ``sink`` anything (its router is closed)."""
        ...

    def save_lesson(self, endpoint: str, model: str, kind: str, name: str) -> None:
        """Record what a refusal taught about ``model`` at ``endpoint``: a ``translation`` it
        accepts, or an ``unsupported`` feature (`forge_core.backends.http.openai.dialects.Lessons`)."""
        ...

    def lessons(self, endpoint: str, model: str) -> tuple[frozenset[str], frozenset[str]]:
        """The fleet's lessons of ``model`` at ``endpoint``: (translations, unsupported)."""
        ...

    def take_budget(
        self, key: str, rpm: int, tpm: int, tokens: int, member: str, window: float
    ) -> tuple[bool, float] | None:
        """Count one request (``member``, ``tokens``) against budget ``key`` atomically, if
        it fits in the last ``window`` seconds (``rpm``/``tpm`` 0: no limit of that kind).

        (True, 0.0) when counted, (False, seconds until it would fit) when not (``math.inf``:
        never), None when the store is away (the caller counts alone).
        """
        ...

    def settle_budget(self, key: str, member: str, reserved: int, tokens: int) -> None:
        """Replace the ``reserved`` tokens of ``member`` by the ``tokens`` it used."""
        ...

    def budgets(self, window: float) -> dict[str, dict[str, int]] | None:
        """Every budget's ``requests`` and ``tokens`` in the window (the fleet view); None
        when the store is away."""
        ...


def mask_url(url: str) -> str:
    """``url`` with its password (and a bare token user) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None and not parts.username:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    # A password, or a user alone (``redis://token@host``, often a token), is masked.
    auth = f"{parts.username or ''}:***" if parts.password is not None else "***"
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))
