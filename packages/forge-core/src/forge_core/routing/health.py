"""Cached endpoint health: probed cheaply (never a billed call), trusted for a TTL.

A backend opts in by having ``health(timeout)`` (and ``ahealth``), as every HTTP client does
(`ModelCatalog`). It may answer a bool, or ``"up"`` / ``"warming"`` / ``"down"`` — a local
model still loading is *warming*, which is not *down*: the router keeps warming candidates and
drops only cached-down ones. Backends without a probe are never dropped for health.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cachetools import TTLCache

from forge_core.backends.base import ResidentModelsReport
from forge_core.errors import ProviderError
from forge_core.routing.load import in_listing
from forge_core.routing.retry import Clock, SystemClock
from forge_core.state.base import SharedState

logger = logging.getLogger("forge.health")

__all__ = ["HealthCache", "HealthMonitor", "HealthStatus", "ModelDiscovery", "endpoint_of"]

_MAX_ENDPOINTS = 256


def endpoint_of(backend: object) -> str:
    """An endpoint's key for breakers and health: its base URL, or ``provider:in-process``."""
    base_url = getattr(backend, "base_url", None)
    if base_url:
        return str(base_url)
    provider = getattr(backend, "provider", None)
    return f"{getattr(provider, 'value', provider)}:in-process"


class HealthStatus(enum.StrEnum):
    """What the last probe of an endpoint said."""

    UP = "up"
    WARMING = "warming"
    DOWN = "down"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, answer: Any) -> HealthStatus:
        """A probe's answer (bool, or a status name) as a status."""
        if isinstance(answer, bool):
            return cls.UP if answer else cls.DOWN
        try:
            return cls(str(getattr(answer, "value", answer)).lower())
        except ValueError:
            return cls.UNKNOWN


class HealthCache:
    """Endpoint -> status, each entry trusted for ``ttl`` seconds."""

    def __init__(
        self,
        ttl: float = 30.0,
        *,
        clock: Clock | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._ttl = ttl
        self._shared = shared
        self._lock = threading.Lock()
        # endpoint -> (expires at, status); a plain dict because a lookup is on every plan for
        # every deployment, and a dict read needs no lock (the endpoints are the config's).
        self._cache: dict[str, tuple[float, HealthStatus]] = {}
        #: The endpoints whose last mark is down (some may have expired since).
        self._down: set[str] = set()

    def cached(self, endpoint: str) -> HealthStatus | None:
        """The cached status, or None when there is none or it expired (never probes).

        With shared state the fleet's entry wins (another process may have just found the
        endpoint down); this process's own entry answers while the store has none or is away.
        """
        if self._shared is not None:
            status = self._shared.load_health(endpoint)
            if status is not None:
                return HealthStatus.of(status)
        entry = self._cache.get(endpoint)
        if entry is None or entry[0] <= self._clock.monotonic():
            return None
        return entry[1]

    def none_down(self) -> bool:
        """Whether no endpoint is cached as down (never with shared state: the fleet may
        know one). Planning then skips looking each one up."""
        return self._shared is None and not self._down

    def cached_all(self, endpoints: Sequence[str]) -> list[HealthStatus | None]:
        """`cached` for each of ``endpoints`` (one clock reading for all)."""
        if self._shared is not None:
            return [self.cached(endpoint) for endpoint in endpoints]
        now = self._clock.monotonic()
        cache = self._cache
        return [
            None if entry is None or entry[0] <= now else entry[1]
            for entry in map(cache.get, endpoints)
        ]

    def mark(self, endpoint: str, status: HealthStatus) -> None:
        """Record ``status`` for ``endpoint`` (a probe's result, or a call that just answered)."""
        with self._lock:
            self._cache[endpoint] = (self._clock.monotonic() + self._ttl, status)
            if status is HealthStatus.DOWN:
                self._down.add(endpoint)
            else:
                self._down.discard(endpoint)
        if self._shared is not None:
            self._shared.save_health(endpoint, status.value, self._ttl)

    def check(
        self, endpoint: str, backend: object, timeout: float, *, refresh: bool = False
    ) -> HealthStatus:
        """The cached status, probing ``backend`` when the cache has none (or ``refresh``)."""
        cached = None if refresh else self.cached(endpoint)
        if cached is not None:
            return cached
        probe = getattr(backend, "health", None)
        if probe is None:
            return HealthStatus.UNKNOWN
        try:
            status = HealthStatus.of(probe(timeout))
        except Exception:
            status = HealthStatus.DOWN
        self.mark(endpoint, status)
        return status

    async def acheck(self, endpoint: str, backend: object, timeout: float) -> HealthStatus:
        """Async `check`, using the backend's ``ahealth`` when it has one."""
        cached = self.cached(endpoint)
        if cached is not None:
            return cached
        probe = getattr(backend, "ahealth", None)
        if probe is None:
            return self.check(endpoint, backend, timeout)
        try:
            status = HealthStatus.of(await probe(timeout))
        except Exception:
            status = HealthStatus.DOWN
        self.mark(endpoint, status)
        return status

    def snapshot(self) -> dict[str, str]:
        """Every unexpired entry (with shared state, the fleet's entries over this process's)."""
        now = self._clock.monotonic()
        with self._lock:
            entries = {
                endpoint: status.value
                for endpoint, (expires, status) in self._cache.items()
                if expires > now
            }
        if self._shared is not None:
            entries.update(self._shared.health())
        return entries


class ModelDiscovery:
    """``ModelDiscovery(cache_duration)``: models across deployments, and health.

    Model lists come from each backend's ``list_models`` (never a billed call) and are cached
    for ``cache_duration`` seconds; endpoint health comes from the shared `HealthCache`.
    Backends without a listing or a probe are skipped, not failed. Backends are keyed by
    deployment name (`Provider` values for the default deployments).
    """

    def __init__(
        self,
        backends: Mapping[str, object],
        cache_duration: float = 300.0,
        *,
        health: HealthCache | None = None,
        health_check_timeout: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._backends = dict(backends)
        self._clock = clock or SystemClock()
        self._health = health or HealthCache(clock=self._clock)
        self._timeout = health_check_timeout
        self._lock = threading.Lock()
        self._models: TTLCache[str, list[Any]] = TTLCache(
            maxsize=_MAX_ENDPOINTS, ttl=cache_duration, timer=self._clock.monotonic
        )

    def discover_available_models(self) -> dict[str, list[Any]]:
        """Each deployment's listed models (`ModelInfo`), from cache while fresh.

        A deployment whose listing fails is left out (and logged); it is asked again next
        time. `where_available` turns it around: each model and the deployments that have it.
        """
        found: dict[str, list[Any]] = {}
        for name, backend in self._backends.items():
            models = self._listed(name, backend)
            if models is not None:
                found[name] = models
        return found

    def where_available(self) -> dict[str, dict[str, list[str]]]:
        """Every listed model across deployments: ``{"pulled": [...], "loaded": [...]}``, the
        deployments that list it and those where it is loaded in memory now (Ollama's
        ``/api/ps``; a listing that says nothing of it counts as not loaded)."""
        union: dict[str, dict[str, list[str]]] = {}
        for name, models in self.discover_available_models().items():
            running = self._running(name)
            for model in models:
                where = union.setdefault(model.id, {"pulled": [], "loaded": []})
                where["pulled"].append(name)
                if getattr(model, "loaded", False) or in_listing(model.id, running):
                    where["loaded"].append(name)
        return union

    def _running(self, name: str) -> frozenset[str]:
        """The models an Ollama deployment has loaded now (``/api/ps``; none when it cannot
        say), asked fresh: discovery is not on the request path."""
        backend = self._backends[name]
        if not isinstance(backend, ResidentModelsReport):
            return frozenset()
        try:
            return frozenset(backend.loaded_models(self._timeout))
        except ProviderError:
            return frozenset()

    def _listed(self, provider: str, backend: object) -> list[Any] | None:
        with self._lock:
            cached = self._models.get(provider)
        if cached is not None:
            return cached
        lister = getattr(backend, "list_models", None)
        if lister is None:
            return None
        try:
            models = list(lister())
        except ProviderError as exc:
            logger.info("forge: cannot list %s models: %s", provider, exc)
            return None
        with self._lock:
            self._models[provider] = models
        return models

    def check_model_health(self, model: str) -> HealthStatus:
        """``deployment:model``'s health (``provider:model`` for a default deployment): its
        endpoint's, and down when the endpoint answers but does not list the model (not
        pulled / not served)."""
        name, _, bare = model.partition(":")
        if name.lower() in self._backends:
            name = name.lower()
        backend = self._backends.get(name)
        if backend is None:
            return HealthStatus.UNKNOWN
        status = self._health.check(endpoint_of(backend), backend, self._timeout)
        if status is not HealthStatus.UP or not bare:
            return status
        listed = self._listed(name, backend)
        if listed is not None and bare not in {getattr(m, "id", None) for m in listed}:
            return HealthStatus.DOWN
        return status


class HealthMonitor:
    """Runs ``probe`` now and then every ``interval`` seconds in a daemon thread.

    Keeps the health cache fresh before requests arrive, so a provider that went down is
    skipped without a failed attempt, and one that came back is tried again. `stop` ends it.
    """

    def __init__(self, probe: Callable[[], object], interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._probe = probe
        self._interval = interval
        self._stop = threading.Event()
        self._ran = threading.Condition()
        self._rounds = 0
        self._thread = threading.Thread(target=self._run, name="forge-health", daemon=True)

    @property
    def rounds(self) -> int:
        """How many probe rounds have completed."""
        with self._ran:
            return self._rounds

    @property
    def running(self) -> bool:
        """Whether the monitor thread is alive."""
        return self._thread.is_alive()

    def start(self) -> HealthMonitor:
        """Start the thread (the first round runs at once); returns self. Idempotent."""
        if self._thread.ident is None:
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it, at most ``timeout`` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait_for_rounds(self, rounds: int, timeout: float) -> bool:
        """Block until ``rounds`` rounds have completed; False if ``timeout`` passed first."""
        with self._ran:
            return self._ran.wait_for(lambda: self._rounds >= rounds, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._probe()
            except Exception:
                logger.exception("forge: health monitor probe failed")
            with self._ran:
                self._rounds += 1
                self._ran.notify_all()
            self._stop.wait(self._interval)

    def __enter__(self) -> HealthMonitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
