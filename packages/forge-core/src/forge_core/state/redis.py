"""`RedisState`: breakers, probe leases and health shared through Redis (forge-core[redis]).

Keys, all under ``{key_prefix}:``: ``breaker:{endpoint}`` (a hash: state, failures, cooldown,
opened_at in wall-clock seconds, times_opened, version), ``probe:{endpoint}`` (the half-open
probe lease: ``SET NX PX``, its value the holder's token), ``health:{endpoint}`` (a status
expiring with ``routing.health_ttl_seconds``), ``load:{endpoint}`` (a hash: each process's
attempts in flight there and recent latency by model, JSON under the process's token, written
with every refresh), ``lessons:{endpoint}`` (a hash: what refusals taught, one field per
``[kind, model, name]``), ``affinity:{endpoint}`` (a stream: one entry per request served
there, with its model, its prefix digests in hex and the writer's token; at most the index's
per-deployment bound of entries, those older than ``routing.affinity_ttl_seconds`` trimmed,
and the key expiring that long after its last write) and, per rate budget (`forge_core.routing.budget`), the sorted sets
``budget:{key}:requests`` and ``budget:{key}:tokens`` (scored by Redis's own clock in ms, so
hosts with skewed clocks count one window), taken and pruned atomically by `TAKE_BUDGET`.

Cheap on the hot path: reads come from a local view of every endpoint this process has asked
about, refreshed in one pipelined round trip when it is older than ``cache_ttl`` seconds; while
one thread refreshes it, the others read the view they have. So a change made by another
process is seen at most ``cache_ttl`` plus one round trip later.

Never blocking: every call is bounded by ``timeout`` (connect and read, no retries); the first
failure logs one warning (the URL's password masked), and from then on no call is tried, so
routing goes on with local state, while a background thread PINGs Redis every
``retry_interval`` seconds; when it answers, one info line says so and calls resume. Calls are synchronous even on asyncio paths: a bounded sub-ms
round trip, a few times a second, does not justify a second (async) client and code path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from forge_core.errors import ConfigError
from forge_core.state.base import (
    BreakerRecord,
    LoadSource,
    PrefixSink,
    SharedPrefixes,
    mask_url,
)
from forge_core.state.redis_scripts import RELEASE_PROBE, SETTLE_BUDGET, TAKE_BUDGET

logger = logging.getLogger("forge.state")

__all__ = ["RedisState", "mask_url"]

T = TypeVar("T")
C = TypeVar("C", bound=Callable[..., Any])

#: A process's load report expires this long after its last refresh (a process that is gone).
_LOAD_EXPIRY_MS = 10_000
#: Reports older than this are not counted (the process is gone).
_LOAD_STALE_SECONDS = 5.0
#: How often the lessons (what refusals taught; they change rarely) are re-read.
_LESSONS_SECONDS = 0.1
#: While a process has attempts in flight, its report is re-written this often.
_LOAD_REPUBLISH_SECONDS = 2.0
#: How long `RedisState.close` waits for each of its threads to end.
_JOIN_SECONDS = 5.0
#: Served prefixes waiting for the publisher thread; beyond this (Redis away) the oldest go.
_PREFIXES_QUEUED = 1024
#: At most this many served prefixes are read per endpoint and refresh (a process that
#: starts reads what the fleet learned over a few refreshes).
_PREFIXES_READ = 256


class RedisState:
    """A `forge_core.state.base.SharedState` on Redis; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "forge",
        timeout: float = 0.05,
        cache_ttl: float = 0.02,
        retry_interval: float = 1.0,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                "routing.state.backend redis needs the redis client: "
                "pip install 'forge-core[redis]'"
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._url = mask_url(url)
        self._prefix = key_prefix
        self._cache_ttl = cache_ttl
        self._retry_interval = retry_interval
        self._token = uuid.uuid4().hex
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            decode_responses=True,
        )
        self._state_lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._away = False
        self._reconnector_pid: int | None = None
        self._known: list[str] = []
        self._view_at = float("-inf")
        self._breakers: dict[str, BreakerRecord | None] = {}
        self._health: dict[str, str | None] = {}
        self._health_written: dict[str, tuple[float, str]] = {}
        #: endpoint -> model -> (translations, unsupported features) the fleet learned.
        self._lessons: dict[str, dict[str, tuple[set[str], set[str]]]] = {}
        self._lesson_endpoints: set[str] = set()
        #: Endpoints whose fleet load this process reads (it balances over them).
        self._load_watch: set[str] = set()
        self._lessons_at = float("-inf")
        #: Each router's load, weakly (`_weakly`): a router dropped unclosed stops counting.
        self._load_sources: list[Callable[[], LoadSource | None]] = []
        self._load_dirty = threading.Event()
        #: Set by `close`: the threads end (woken by the event) and no call is made any more
        #: (the plain flag, read on every call).
        self._closed = threading.Event()
        self._shut = False
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._publisher_pid: int | None = None
        #: endpoint -> (the other processes' attempts in flight, {model: their mean latency}).
        self._fleet_load: dict[str, tuple[int, dict[str, float]]] = {}
        #: Served prefixes to publish: (endpoint, model, digests in hex, limit, ttl).
        self._prefixes_out: list[tuple[str, str, str, int, float]] = []
        #: Who learns what the other processes served (`learn_prefixes`), weakly.
        self._prefix_sinks: list[Callable[[], PrefixSink | None]] = []
        #: endpoint -> the id of the last ``affinity`` stream entry read.
        self._prefixes_read: dict[str, str] = {}
        self._take = self._client.register_script(TAKE_BUDGET)
        self._settle = self._client.register_script(SETTLE_BUDGET)

    def __repr__(self) -> str:
        return f"RedisState({self._url!r}, key_prefix={self._prefix!r})"

    @property
    def url(self) -> str:
        """The Redis URL, its password masked."""
        return self._url

    # -- guarded calls ---------------------------------------------------------------------

    def available(self) -> bool:
        """Whether Redis answered the last call (False while it is skipped)."""
        return not self._away

    def _call(self, action: Callable[[], T]) -> tuple[bool, T | None]:
        if self._shut:
            return False, None
        if self._away:
            if self._reconnector_pid != os.getpid():
                self._start_reconnector()  # a forked child: the parent's thread is not here
            return False, None
        try:
            result = action()
        except self._errors as exc:
            with self._state_lock:
                first = not self._away
                self._away = True
                self._view_at = float("-inf")
            if first:
                logger.warning(
                    "forge: shared routing state at %s is unreachable (%s); routing on this "
                    "process's own state until it answers again",
                    self._url,
                    type(exc).__name__,
                )
                self._start_reconnector()
            return False, None
        return True, result

    def _start_reconnector(self) -> None:
        with self._state_lock:
            if self._reconnector_pid == os.getpid():
                return
            self._reconnector_pid = os.getpid()
        self._spawn(self._reconnect, "forge-state-reconnect")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        """Start a daemon thread of this store's, which `close` ends and joins."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._threads_lock:
            self._threads = [kept for kept in self._threads if kept.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _reconnect(self) -> None:
        """Until Redis answers a PING (every ``retry_interval``): no request waits for it."""
        while True:
            if self._closed.wait(self._retry_interval):
                return
            try:
                self._client.ping()
            except self._errors:
                continue
            with self._state_lock:
                self._away = False
                self._reconnector_pid = None
            logger.info("forge: shared routing state at %s answers again", self._url)
            return

    def _key(self, kind: str, endpoint: str) -> str:
        return f"{self._prefix}:{kind}:{endpoint}"

    # -- the local view --------------------------------------------------------------------

    def _view(self, endpoint: str) -> bool:
        """Make the view of ``endpoint`` fresh enough; False when Redis is away."""
        if endpoint not in self._breakers:
            with self._state_lock:
                if endpoint not in self._known:
                    self._known.append(endpoint)
                    self._view_at = float("-inf")
        if time.monotonic() - self._view_at < self._cache_ttl:
            return True
        if not self._refreshing.acquire(blocking=False):
            # Another thread is refreshing: read the view there is, unless there is none yet.
            if endpoint in self._breakers:
                return True
            self._refreshing.acquire()
        try:
            if time.monotonic() - self._view_at < self._cache_ttl:
                return True
            return self._refresh()
        finally:
            self._refreshing.release()

    def _refresh(self) -> bool:
        """One pipelined round trip: read every known endpoint's breaker, health and the
        fleet's load, and write this process's load."""
        with self._state_lock:
            endpoints = list(self._known)
        own = self._own_load()
        started = time.monotonic()
        now = time.time()
        count = len(endpoints)

        # Only what this process uses: load where it balances, lessons (which change rarely)
        # of the endpoints it asked about, at most every `_LESSONS_SECONDS`.
        with self._state_lock:
            balanced = sorted(self._load_watch | set(own)) if self._load_sources else []
        with self._state_lock:
            lessons = list(self._lesson_endpoints)
            streams = sorted(self._load_watch) if self._prefix_sinks else []
        if lessons and started - self._lessons_at < max(self._cache_ttl, _LESSONS_SECONDS):
            lessons = []
        if streams:
            # A stream not read yet: from what has not expired (the longest TTL is not known
            # here; entries past the reader's own are dropped by it).
            since = f"{int(now * 1000) - 3_600_000}-0"
            positions = {
                self._key("affinity", endpoint): self._prefixes_read.get(endpoint, since)
                for endpoint in streams
            }

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for endpoint in endpoints:
                pipe.hgetall(self._key("breaker", endpoint))
            pipe.mget([self._key("health", endpoint) for endpoint in endpoints])
            for endpoint in balanced:
                key = self._key("load", endpoint)
                if endpoint in own:
                    in_flight, latency = own[endpoint]
                    report = {"in_flight": in_flight, "latency": latency, "at": now}
                    pipe.hset(key, self._token, json.dumps(report))
                    pipe.pexpire(key, _LOAD_EXPIRY_MS)
                pipe.hgetall(key)
            for endpoint in lessons:
                pipe.hgetall(self._key("lessons", endpoint))
            if streams:
                pipe.xread(positions, count=_PREFIXES_READ)
            result: list[Any] = pipe.execute()
            return result

        ok, result = self._call(read)
        if not ok or result is None:
            return False
        for endpoint, raw in zip(endpoints, result[:count], strict=True):
            self._breakers[endpoint] = _record(raw) if raw else None
        for endpoint, status in zip(endpoints, result[count], strict=True):
            self._health[endpoint] = status
        rest = iter(result[count + 1 :])
        for endpoint in balanced:
            if endpoint in own:
                next(rest), next(rest)  # the HSET and PEXPIRE answers
            self._fleet_load[endpoint] = self._others(next(rest), now)
        for endpoint in lessons:
            self._lessons[endpoint] = _lessons_of(next(rest))
        if lessons:
            self._lessons_at = started
        if streams:
            self._learned(next(rest), now)
        self._view_at = started
        return True

    def _learned(self, read: Any, now: float) -> None:
        """Hand the sinks the other processes' entries of an ``XREAD`` answer."""
        head = len(self._key("affinity", ""))
        entries: list[SharedPrefixes] = []
        for stream, items in read or ():
            endpoint = stream[head:]
            for entry_id, fields in items:
                self._prefixes_read[endpoint] = entry_id
                if fields.get("w") == self._token:
                    continue
                try:
                    written_ms = int(entry_id.split("-", 1)[0])
                    hexed = fields["d"]
                    digests = tuple(
                        bytes.fromhex(hexed[i : i + 16]) for i in range(0, len(hexed), 16)
                    )
                    entries.append(
                        (endpoint, fields["m"], digests, max(now - written_ms / 1000, 0.0))
                    )
                except (KeyError, ValueError):
                    continue
        if entries:
            for ref in list(self._prefix_sinks):
                sink = ref()
                if sink is not None:
                    sink(entries)

    # -- prefix affinity -------------------------------------------------------------------

    def share_prefixes(
        self, endpoint: str, model: str, digests: Sequence[bytes], *, limit: int, ttl: float
    ) -> None:
        """Queue the entry; the publisher thread writes it within ``cache_ttl``."""
        entry = (endpoint, model, b"".join(digests).hex(), limit, ttl)
        with self._state_lock:
            self._prefixes_out.append(entry)
            if len(self._prefixes_out) > _PREFIXES_QUEUED:
                del self._prefixes_out[0]
        self.load_changed()

    def flush_prefixes(self) -> None:
        """Write the queued served prefixes now, in one pipelined round trip: ``XADD`` (exact
        ``MAXLEN``), ``XTRIM MINID`` (entries older than the TTL) and ``PEXPIRE`` each."""
        with self._state_lock:
            queued, self._prefixes_out = self._prefixes_out, []
        if not queued:
            return
        now_ms = int(time.time() * 1000)

        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for endpoint, model, hexed, limit, ttl in queued:
                key = self._key("affinity", endpoint)
                ttl_ms = max(int(ttl * 1000), 1)
                fields = {"m": model, "d": hexed, "w": self._token}
                pipe.xadd(key, fields, maxlen=limit, approximate=False)
                pipe.xtrim(key, minid=f"{now_ms - ttl_ms}-0", approximate=False)
                pipe.pexpire(key, ttl_ms)
            pipe.execute()

        self._call(write)

    def learn_prefixes(self, sink: PrefixSink) -> None:
        """Hand ``sink`` the other processes' served prefixes with every refresh."""
        with self._state_lock:
            self._prefix_sinks.append(_weakly(sink))
            self._view_at = float("-inf")

    def forget_prefixes(self, sink: PrefixSink) -> None:
        """Stop handing ``sink`` anything (and any sink whose owner is gone)."""
        with self._state_lock:
            self._prefix_sinks = [
                ref for ref in self._prefix_sinks if (found := ref()) is not None and found != sink
            ]

    def _own_load(self) -> dict[str, tuple[int, dict[str, float]]]:
        merged: dict[str, tuple[int, dict[str, float]]] = {}
        for ref in list(self._load_sources):
            source = ref()
            if source is None:
                continue
            for endpoint, (in_flight, latency) in source().items():
                before, models = merged.get(endpoint, (0, {}))
                merged[endpoint] = (before + in_flight, {**models, **latency})
        return merged

    def _others(self, reports: dict[str, str], now: float) -> tuple[int, dict[str, float]]:
        """The other processes' total in flight and mean latency by model, from their fresh
        reports (a process that stopped reporting drops out after `_LOAD_STALE_SECONDS`)."""
        in_flight = 0
        samples: dict[str, list[float]] = {}
        for token, text in reports.items():
            if token == self._token:
                continue
            try:
                report = json.loads(text)
                if now - float(report["at"]) > _LOAD_STALE_SECONDS:
                    continue
                in_flight += int(report["in_flight"])
                for model, seconds in dict(report["latency"]).items():
                    samples.setdefault(str(model), []).append(float(seconds))
            except (ValueError, KeyError, TypeError):
                continue
        return in_flight, {model: sum(v) / len(v) for model, v in samples.items()}

    # -- load ------------------------------------------------------------------------------

    def report_load(self, source: LoadSource) -> None:
        """Publish ``source``'s load with every refresh of the view."""
        self._load_sources.append(_weakly(source))

    def forget_load(self, source: LoadSource) -> None:
        """Stop publishing ``source`` (and any source whose router is gone)."""
        self._load_sources = [
            ref for ref in self._load_sources if (found := ref()) is not None and found != source
        ]

    def load_changed(self) -> None:
        """Have the publisher thread write this process's load within ``cache_ttl`` (changes
        in that time go in one write; nothing waits on the request's thread)."""
        self._load_dirty.set()
        if self._publisher_pid != os.getpid():
            with self._state_lock:
                if self._publisher_pid != os.getpid():
                    # A forked child has no publisher thread of its parent's: start its own.
                    self._publisher_pid = os.getpid()
                    self._spawn(self._publish_loop, "forge-state-load")

    def _publish_loop(self) -> None:
        while not self._shut:
            changed = self._load_dirty.wait(_LOAD_REPUBLISH_SECONDS)
            if changed and self._closed.wait(self._cache_ttl):  # gather one window's changes
                return
            self._load_dirty.clear()
            self.flush_prefixes()
            own = self._own_load()
            if changed or any(in_flight for in_flight, _ in own.values()):
                # Re-published while anything is in flight, so a long request is not dropped
                # as stale by the others.
                self._publish_load(own)

    def _publish_load(self, own: dict[str, tuple[int, dict[str, float]]]) -> None:
        now = time.time()

        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for endpoint, (in_flight, latency) in own.items():
                key = self._key("load", endpoint)
                report = {"in_flight": in_flight, "latency": latency, "at": now}
                pipe.hset(key, self._token, json.dumps(report))
                pipe.pexpire(key, _LOAD_EXPIRY_MS)
            pipe.execute()

        if own:
            self._call(write)

    def _watch_load(self, endpoint: str) -> None:
        if endpoint not in self._load_watch:
            with self._state_lock:
                self._load_watch.add(endpoint)
                self._view_at = float("-inf")

    def others_in_flight(self, endpoint: str) -> int:
        """The other processes' attempts in flight at ``endpoint`` (from the view)."""
        self._watch_load(endpoint)
        if not self._view(endpoint):
            return 0
        return self._fleet_load.get(endpoint, (0, {}))[0]

    def fleet_latency(self, endpoint: str, model: str) -> float | None:
        """The other processes' mean recent latency of ``model`` at ``endpoint``."""
        self._watch_load(endpoint)
        if not self._view(endpoint):
            return None
        return self._fleet_load.get(endpoint, (0, {}))[1].get(model)

    # -- breakers --------------------------------------------------------------------------

    def load_breaker(self, endpoint: str, *, fresh: bool = False) -> BreakerRecord | None:
        """The shared record of ``endpoint`` (from the view unless ``fresh``)."""
        if fresh:
            ok, raw = self._call(lambda: self._client.hgetall(self._key("breaker", endpoint)))
            if not ok:
                return None
            record = _record(raw) if raw else None
            self._breakers[endpoint] = record
            return record
        if not self._view(endpoint):
            return None
        return self._breakers.get(endpoint)

    def save_breaker(self, endpoint: str, record: BreakerRecord) -> int | None:
        """Write ``record``; the version Redis gave it (None when Redis is away)."""
        key = self._key("breaker", endpoint)
        fields = {
            "state": record.state,
            "failures": record.failures,
            "cooldown": record.cooldown,
            "opened_at": record.opened_at,
            "times_opened": record.times_opened,
        }

        def write() -> Any:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(key, mapping=fields)
            pipe.hincrby(key, "version", 1)
            return pipe.execute()

        ok, result = self._call(write)
        if not ok or result is None:
            return None
        version = int(result[1])
        self._breakers[endpoint] = BreakerRecord(
            record.state,
            record.failures,
            record.cooldown,
            record.opened_at,
            record.times_opened,
            version,
        )
        return version

    def acquire_probe(self, endpoint: str, lease_seconds: float) -> bool:
        """``SET probe:{endpoint} token NX PX lease``: True if this process holds the lease
        now (or Redis is away), False if another process does."""
        key = self._key("probe", endpoint)
        ms = max(int(lease_seconds * 1000), 1)
        ok, result = self._call(lambda: self._client.set(key, self._token, nx=True, px=ms))
        if not ok:
            return True
        return bool(result)

    def release_probe(self, endpoint: str) -> None:
        """Delete the probe lease if this process holds it."""
        key = self._key("probe", endpoint)
        self._call(lambda: self._client.eval(RELEASE_PROBE, 1, key, self._token))

    def breakers(self) -> dict[str, BreakerRecord]:
        """Every endpoint's shared record (a SCAN: the fleet view, not the hot path)."""
        head = f"{self._prefix}:breaker:"

        def scan() -> dict[str, BreakerRecord]:
            found = {}
            for key in self._client.scan_iter(match=f"{head}*", count=256):
                raw = self._client.hgetall(key)
                if raw:
                    found[key[len(head) :]] = _record(raw)
            return found

        ok, result = self._call(scan)
        return result if ok and result is not None else {}

    # -- health ----------------------------------------------------------------------------

    def load_health(self, endpoint: str) -> str | None:
        """The fleet's unexpired health status of ``endpoint`` (from the view)."""
        if not self._view(endpoint):
            return None
        return self._health.get(endpoint)

    def save_health(self, endpoint: str, status: str, ttl: float) -> None:
        """``SET health:{endpoint} status PX ttl``; skipped when this process wrote the same
        status less than half a TTL ago (every answered call marks its endpoint up)."""
        now = time.monotonic()
        written = self._health_written.get(endpoint)
        if written is not None and written[1] == status and now - written[0] < ttl / 2:
            return
        ms = max(int(ttl * 1000), 1)
        ok, _ = self._call(lambda: self._client.set(self._key("health", endpoint), status, px=ms))
        if ok:
            self._health_written[endpoint] = (now, status)
            self._health[endpoint] = status

    def health(self) -> dict[str, str]:
        """Every unexpired health entry (a SCAN: the fleet view)."""
        head = f"{self._prefix}:health:"

        def scan() -> dict[str, str]:
            keys = list(self._client.scan_iter(match=f"{head}*", count=256))
            values = self._client.mget(keys) if keys else []
            return {
                key[len(head) :]: value
                for key, value in zip(keys, values, strict=True)
                if value is not None
            }

        ok, result = self._call(scan)
        return result if ok and result is not None else {}

    # -- lessons ---------------------------------------------------------------------------

    def save_lesson(self, endpoint: str, model: str, kind: str, name: str) -> None:
        """``HSET lessons:{endpoint} [kind, model, name] 1`` (a union: learned once is kept)."""
        field = json.dumps([kind, model, name])
        learned = self._lessons.setdefault(endpoint, {}).setdefault(model, (set(), set()))
        learned[0 if kind == "translation" else 1].add(name)
        self._call(lambda: self._client.hset(self._key("lessons", endpoint), field, "1"))

    def lessons(self, endpoint: str, model: str) -> tuple[frozenset[str], frozenset[str]]:
        """The fleet's (translations, unsupported) of ``model`` at ``endpoint`` (the view)."""
        if endpoint not in self._lesson_endpoints:
            with self._state_lock:
                self._lesson_endpoints.add(endpoint)
                self._lessons_at = float("-inf")
                self._view_at = float("-inf")
        self._view(endpoint)
        translations, unsupported = self._lessons.get(endpoint, {}).get(model, (set(), set()))
        return frozenset(translations), frozenset(unsupported)

    # -- rate budgets ----------------------------------------------------------------------

    def take_budget(
        self, key: str, rpm: int, tpm: int, tokens: int, member: str, window: float
    ) -> tuple[bool, float] | None:
        """`TAKE_BUDGET` on ``budget:{key}:requests`` and ``budget:{key}:tokens``."""
        keys = (self._key("budget", f"{key}:requests"), self._key("budget", f"{key}:tokens"))
        window_ms = max(int(window * 1000), 1)
        ok, result = self._call(
            lambda: self._take(keys=keys, args=(window_ms, rpm, tpm, tokens, member))
        )
        if not ok or result is None:
            return None
        taken, wait_ms = int(result[0]), int(result[1])
        if taken:
            return True, 0.0
        return False, math.inf if wait_ms < 0 else wait_ms / 1000.0

    def settle_budget(self, key: str, member: str, reserved: int, tokens: int) -> None:
        """`SETTLE_BUDGET` on ``budget:{key}:tokens``."""
        log = self._key("budget", f"{key}:tokens")
        self._call(
            lambda: self._settle(keys=(log,), args=(f"{reserved}:{member}", f"{tokens}:{member}"))
        )

    def budgets(self, window: float) -> dict[str, dict[str, int]] | None:
        """Every budget's requests and tokens in the last ``window`` seconds (a SCAN)."""
        head = f"{self._prefix}:budget:"

        def scan() -> dict[str, dict[str, int]]:
            now_s, now_us = self._client.time()
            since = int(now_s) * 1000 + int(now_us) // 1000 - int(window * 1000)
            found: dict[str, dict[str, int]] = {}
            for name in self._client.scan_iter(match=f"{head}*:requests", count=256):
                key = name[len(head) : -len(":requests")]
                requests = self._client.zcount(name, f"({since}", "+inf")
                members = self._client.zrangebyscore(f"{head}{key}:tokens", f"({since}", "+inf")
                tokens = sum(int(m.split(":", 1)[0]) for m in members)
                found[key] = {"requests": int(requests), "tokens": tokens}
            return found

        ok, result = self._call(scan)
        return result if ok else None

    def close(self) -> None:
        """End the reconnect and load-publishing threads (joined, bounded by the Redis
        timeout), then close the connection pool; later calls make no round trip. Served
        prefixes still queued are written first."""
        self.flush_prefixes()
        self._shut = True
        self._closed.set()
        self._load_dirty.set()
        with self._threads_lock:
            threads = list(self._threads)
            self._threads.clear()
        for thread in threads:
            if thread is not threading.current_thread():
                # A thread in a call gives up within the Redis timeout; waited for, bounded.
                thread.join(_JOIN_SECONDS)
        with contextlib.suppress(*self._errors):
            self._client.close()


def _weakly(source: C) -> Callable[[], C | None]:
    """A weak reference to a bound method (a router's load, its affinity index's sink), else
    a strong one."""
    if hasattr(source, "__self__") and hasattr(source, "__func__"):
        return weakref.WeakMethod(source)
    return lambda: source


def _lessons_of(fields: dict[str, str]) -> dict[str, tuple[set[str], set[str]]]:
    found: dict[str, tuple[set[str], set[str]]] = {}
    for field in fields:
        try:
            kind, model, name = json.loads(field)
        except ValueError:
            continue
        learned = found.setdefault(str(model), (set(), set()))
        learned[0 if kind == "translation" else 1].add(str(name))
    return found


def _record(raw: dict[str, str]) -> BreakerRecord:
    return BreakerRecord(
        state=raw.get("state", "closed"),
        failures=int(raw.get("failures", 0)),
        cooldown=float(raw.get("cooldown", 0.0)),
        opened_at=float(raw.get("opened_at", 0.0)),
        times_opened=int(raw.get("times_opened", 0)),
        version=int(raw.get("version", 0)),
    )
