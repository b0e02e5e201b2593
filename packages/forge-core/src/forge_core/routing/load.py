"""How busy each deployment is, and which models each Ollama host has loaded, for balancing.

`DeploymentLoad` counts the attempts forge has in flight at each endpoint (and which of them
are loading a model), and keeps an exponentially weighted moving average of each endpoint and
model's recent latency: the time to the first token of a stream, the whole answer otherwise.
`ResidentModels` caches what Ollama's ``/api/ps`` says is loaded on each host, briefly, and
never holds planning for longer than a bounded wait. The planner orders the deployments that
serve the same model by them (``routing.balance: warm-first``, docs/behaviour.md, Balancing).

Both are keyed by endpoint (a base URL) and model, not by deployment name, so several routers,
and later a shared store, can count the same host together.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forge_core.routing.retry import Clock, SystemClock

if TYPE_CHECKING:
    from forge_core.state.base import SharedState

__all__ = ["Busy", "DeploymentLoad", "ResidentModels", "in_listing", "listed_as"]

#: Weight of the newest sample in the latency average (the older ones share the rest).
LATENCY_SMOOTHING = 0.3
#: How long an ``/api/ps`` answer is trusted.
RESIDENT_TTL_SECONDS = 2.0
#: How long a failed ``/api/ps`` (no answer, an error status) is remembered as "unknown"
#: before the host is asked again, so a host without that API is not asked on every request.
RESIDENT_RETRY_SECONDS = 30.0
#: How long planning waits for an ``/api/ps`` answer it does not have yet: past the listing's
#: own bound (Ollama's ``health_check_timeout``, 1 s by default), so on a loaded machine a
#: host that does answer is not taken for one whose state is unknown.
RESIDENT_WAIT_SECONDS = 1.5

#: Lists the names of the models an endpoint has loaded now (``/api/ps``); raises on failure.
Fetch = Callable[[], Iterable[str]]


def listed_as(model: str) -> tuple[str, ...]:
    """The names ``model`` has in an Ollama listing (``/api/ps``, ``/api/tags``): itself, and
    its ``latest`` tag for a bare name."""
    return (model,) if ":" in model else (model, f"{model}:latest")


def in_listing(model: str, names: frozenset[str]) -> bool:
    """Whether ``model`` is among an Ollama listing's ``names`` (`listed_as`)."""
    return not names.isdisjoint(listed_as(model))


class Busy:
    """One attempt in flight at an endpoint, from `DeploymentLoad.started` until `ended`."""

    __slots__ = ("_ended", "_load", "_loading", "_sampled", "endpoint", "model")

    def __init__(self, load: DeploymentLoad, endpoint: str, model: str, loading: bool) -> None:
        self._load = load
        self.endpoint = endpoint
        self.model = model
        self._loading = loading
        self._sampled = False
        self._ended = False

    @property
    def loading(self) -> bool:
        """Whether the attempt is still waiting for a model to load (a cold start)."""
        return self._loading

    def first_token(self, seconds: float) -> None:
        """The first token arrived after ``seconds``: a latency sample, and the load is over."""
        if not self._sampled:
            self._sampled = True
            self._load._sample(self.endpoint, self.model, seconds)
        self._end_loading()

    def ended(self, seconds: float | None = None) -> None:
        """The attempt is over (answered, failed or cancelled); ``seconds`` is a latency sample
        when no first token gave one. Idempotent."""
        if self._ended:
            return
        if seconds is not None and not self._sampled:
            self._sampled = True
            self._load._sample(self.endpoint, self.model, seconds)
        self._end_loading()
        self._ended = True
        self._load._finished(self.endpoint)

    def _end_loading(self) -> None:
        if self._loading:
            self._loading = False
            self._load._loaded(self.endpoint, self.model)


@dataclass
class _Endpoint:
    in_flight: int = 0
    #: model -> attempts waiting for it to load.
    loading: dict[str, int] = field(default_factory=dict)
    #: model -> latency average, seconds.
    latency: dict[str, float] = field(default_factory=dict)
    #: model -> that average's `latency_band`, kept with it (planning reads it per request).
    bands: dict[str, int] = field(default_factory=dict)


#: The state of an endpoint with nothing measured yet (read only).
_IDLE = _Endpoint()

#: Latencies within this factor of each other are one band: equally fast for balancing.
LATENCY_BAND = 1.25
_LOG_BAND = math.log(LATENCY_BAND)


def latency_band(seconds: float | None) -> int:
    """``seconds``' band on a geometric scale (`LATENCY_BAND`) as 1..127, a lower band
    faster (1 µs and below is 1); 0 when not measured yet, which ranks first."""
    if seconds is None:
        return 0
    band = math.floor(math.log(max(seconds, 1e-6)) / _LOG_BAND)  # -62 at 1 µs
    return min(band + 63, 127)


class DeploymentLoad:
    """Attempts in flight and recent latency, per endpoint (and model); thread-safe.

    Every attempt the router makes is counted from `started` until its `Busy` has `ended`
    (answered, failed, a stream finished or closed by the caller). The latency is an
    exponentially weighted moving average of the successful attempts' first-token times
    (`LATENCY_SMOOTHING`); failures add no sample.
    """

    def __init__(
        self, *, smoothing: float = LATENCY_SMOOTHING, shared: SharedState | None = None
    ) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self._smoothing = smoothing
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._shared = shared
        if shared is not None:
            shared.report_load(self._report)

    def close(self) -> None:
        """Stop publishing this load to the shared state (`SharedState.forget_load`)."""
        if self._shared is not None:
            self._shared.forget_load(self._report)

    def _report(self) -> dict[str, tuple[int, dict[str, float]]]:
        """This process's part of the fleet's load (`SharedState.report_load`)."""
        with self._lock:
            return {
                endpoint: (state.in_flight, dict(state.latency))
                for endpoint, state in self._endpoints.items()
            }

    def started(self, endpoint: str, model: str, *, loading: bool = False) -> Busy:
        """Count one attempt at ``endpoint`` for ``model``; ``loading``: the model is not
        loaded there (the attempt waits for it to load until its first token)."""
        with self._lock:
            state = self._endpoints.get(endpoint)
            if state is None:
                state = self._endpoints[endpoint] = _Endpoint()
            state.in_flight += 1
            if loading:
                state.loading[model] = state.loading.get(model, 0) + 1
        if self._shared is not None:
            self._shared.load_changed()
        return Busy(self, endpoint, model, loading)

    def in_flight(self, endpoint: str) -> int:
        """Attempts in flight at ``endpoint`` now (with shared state, the whole fleet's)."""
        with self._lock:
            state = self._endpoints.get(endpoint)
            own = state.in_flight if state is not None else 0
        if self._shared is not None:
            return own + self._shared.others_in_flight(endpoint)
        return own

    def ranks(self, endpoints: Sequence[str], model: str) -> list[int]:
        """Each of ``endpoints``' load for ``model`` as one int, lower first: `in_flight`
        above the 8 low bits, the `latency_band` of `latency` in them. Read at once (one lock
        for all: planning ranks many deployments per request)."""
        empty = _IDLE
        get = self._endpoints.get
        with self._lock:
            if self._shared is None:
                return [
                    (state := get(endpoint, empty)).in_flight << 8 | state.bands.get(model, 0)
                    for endpoint in endpoints
                ]
            states = [get(endpoint, empty) for endpoint in endpoints]
            found = [(state.in_flight, state.latency.get(model)) for state in states]
        shared = self._shared
        return [
            (in_flight + shared.others_in_flight(endpoint)) << 8
            | latency_band(shared.fleet_latency(endpoint, model) if latency is None else latency)
            for endpoint, (in_flight, latency) in zip(endpoints, found, strict=True)
        ]

    def loading(self, endpoint: str) -> list[str]:
        """The models an attempt in flight at ``endpoint`` is waiting to load, sorted."""
        with self._lock:
            state = self._endpoints.get(endpoint)
            return sorted(state.loading) if state is not None else []

    def latency(self, endpoint: str, model: str) -> float | None:
        """The recent latency of ``model`` at ``endpoint`` in seconds; None before a sample.
        This process's own measure; with shared state, the fleet's when it has none yet."""
        with self._lock:
            state = self._endpoints.get(endpoint)
            own = state.latency.get(model) if state is not None else None
        if own is None and self._shared is not None:
            return self._shared.fleet_latency(endpoint, model)
        return own

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per endpoint: ``in_flight``, ``loading`` (models) and ``latency_ms`` by model."""
        with self._lock:
            return {
                endpoint: {
                    "in_flight": state.in_flight,
                    "loading": sorted(state.loading),
                    "latency_ms": {
                        model: seconds * 1000.0 for model, seconds in state.latency.items()
                    },
                }
                for endpoint, state in self._endpoints.items()
            }

    # -- what a `Busy` reports ----------------------------------------------------------------

    def _sample(self, endpoint: str, model: str, seconds: float) -> None:
        with self._lock:
            state = self._endpoints[endpoint]
            previous = state.latency.get(model)
            average = state.latency[model] = (
                seconds if previous is None else previous + self._smoothing * (seconds - previous)
            )
            state.bands[model] = latency_band(average)

    def _loaded(self, endpoint: str, model: str) -> None:
        with self._lock:
            loading = self._endpoints[endpoint].loading
            left = loading.get(model, 0) - 1
            if left > 0:
                loading[model] = left
            else:
                loading.pop(model, None)

    def _finished(self, endpoint: str) -> None:
        with self._lock:
            self._endpoints[endpoint].in_flight -= 1
        if self._shared is not None:
            self._shared.load_changed()


@dataclass
class _Listing:
    #: The loaded model names of the last answer; None: unknown (no answer yet, or it failed).
    names: frozenset[str] | None = None
    #: Until when (on the router's clock) the entry is trusted.
    until: float = -math.inf
    #: Set when the fetch in progress ends; None when none is.
    done: threading.Event | None = None
    #: Until when (``time.monotonic``) planning waits for that fetch.
    wait_until: float = 0.0


class ResidentModels:
    """Which models each endpoint has loaded (Ollama's ``/api/ps``), cached briefly.

    An answer is trusted for ``ttl`` seconds; a failed one (no answer, an error status) means
    "unknown" for ``retry`` seconds and is no failure of the endpoint. An entry that is not
    trusted is fetched in a background thread, all such entries at once, and the caller waits
    for them at most ``wait`` seconds from the start of the fetch: a slow host costs that
    wait once, then the previous answer (or "unknown") stands until its fetch ends.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        ttl: float = RESIDENT_TTL_SECONDS,
        retry: float = RESIDENT_RETRY_SECONDS,
        wait: float = RESIDENT_WAIT_SECONDS,
    ) -> None:
        self._clock = clock or SystemClock()
        self._ttl = ttl
        self._retry = retry
        self._wait = wait
        self._lock = threading.Lock()
        self._listings: dict[str, _Listing] = {}
        #: Every listing's names, and until when all of them are trusted: while they are, a
        #: plan reads this one dict (replaced, never changed in place) instead of each entry.
        self._known: dict[str, frozenset[str] | None] = {}
        self._known_until = -math.inf

    def names(self, wanted: Mapping[str, Fetch]) -> Mapping[str, frozenset[str] | None]:
        """The loaded model names of each endpoint of ``wanted`` (endpoint -> its fetch), None
        where unknown: from cache while trusted, else fetched (bounded wait). The mapping may
        hold other endpoints too."""
        now = self._clock.monotonic()
        known = self._known
        if self._all_known(wanted, now):
            return known
        waits: list[tuple[threading.Event, float]] = []
        fetches: list[tuple[_Listing, Fetch, threading.Event]] = []
        with self._lock:
            for endpoint, fetch in wanted.items():
                listing = self._listings.get(endpoint)
                if listing is None:
                    listing = self._listings[endpoint] = _Listing()
                if now < listing.until:
                    continue
                if listing.done is None:
                    listing.done = threading.Event()
                    listing.wait_until = time.monotonic() + self._wait
                    fetches.append((listing, fetch, listing.done))
                waits.append((listing.done, listing.wait_until))
        for listing, fetch, done in fetches:
            threading.Thread(
                target=self._fetch, args=(listing, fetch, done), name="forge-api-ps", daemon=True
            ).start()
        for done, wait_until in waits:
            done.wait(max(wait_until - time.monotonic(), 0.0))
        with self._lock:
            if not fetches and not waits:
                self._remember()
            return {endpoint: self._listings[endpoint].names for endpoint in wanted}

    def _all_known(self, endpoints: Mapping[str, object], now: float) -> bool:
        """Whether `_known` holds every endpoint of ``endpoints`` and all of it is trusted at
        ``now`` (read without the lock: `_known` is replaced, never changed in place)."""
        return now < self._known_until and endpoints.keys() <= self._known.keys()

    def _remember(self) -> None:
        """Refresh `_known` from every listing (under the lock)."""
        listings = self._listings
        self._known = {endpoint: listing.names for endpoint, listing in listings.items()}
        self._known_until = min((listing.until for listing in listings.values()), default=-math.inf)

    def trusted(self, endpoints: Mapping[str, object]) -> bool:
        """Whether every endpoint of ``endpoints`` (keyed by endpoint) has a listing that is
        trusted now (`names` would neither fetch nor wait)."""
        now = self._clock.monotonic()
        if self._all_known(endpoints, now):
            return True
        with self._lock:
            listings = self._listings
            return all(
                (listing := listings.get(endpoint)) is not None and now < listing.until
                for endpoint in endpoints
            )

    def mark_loaded(self, endpoint: str, model: str) -> None:
        """``model`` answered at ``endpoint``, so it is loaded there now."""
        with self._lock:
            listing = self._listings.get(endpoint)
            if listing is not None and listing.names is not None and model not in listing.names:
                listing.names = listing.names | {model}
                self._known_until = -math.inf

    def _fetch(self, listing: _Listing, fetch: Fetch, done: threading.Event) -> None:
        names: frozenset[str] | None
        try:
            names = frozenset(fetch())
            trusted = self._ttl
        except Exception:
            # Unknown, which planning treats as not loaded; the endpoint's health is its
            # probes' and its calls' business, not this listing's.
            names = None
            trusted = self._retry
        with self._lock:
            listing.names = names
            listing.until = self._clock.monotonic() + trusted
            listing.done = None
            self._known_until = -math.inf
        done.set()
