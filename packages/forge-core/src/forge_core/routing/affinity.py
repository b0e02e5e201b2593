"""Prefix affinity: a conversation goes back to the deployment that holds its prompt.

A server that just answered a prompt keeps its KV cache (llama-cpp-python and llama.cpp's
server reuse the longest prefix they hold, Ollama per loaded model and slot, vLLM with prefix
caching), so the next turn of the same conversation costs one new message there and the whole
prompt anywhere else. `AffinityIndex` remembers, per deployment (endpoint) and model, the
cumulative hashes of the message sequences it served (`prefix_digests`: the system prompt and
tools first, then message by message), bounded per deployment and least recently used out.
Among the deployments balanced for a request (`Balancer`), the one that most recently served
the longest prefix of it goes first, unless its load says otherwise
(``routing.affinity_imbalance``); an explicit conversation key (``prompt_cache_key``) maps to
a deployment by rendezvous hashing instead, the same in every process. docs/behaviour.md,
"Prefix affinity".
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from forge_core.observability.metrics import AFFINITY_HIT, AFFINITY_LOAD_OVERRIDE, AFFINITY_MISS
from forge_core.prefixes import Digests, prefix_digests
from forge_core.state.base import SharedPrefixes, SharedState
from forge_core.types import ChatRequest

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "HIT",
    "LOAD_OVERRIDE",
    "MISS",
    "PREFIXES_PER_DEPLOYMENT",
    "SPREAD",
    "AffinityIndex",
    "RequestAffinity",
    "prefix_digests",
    "prefix_reason",
    "rendezvous",
]

#: How many prefixes (message sequences, per model) each deployment's index remembers.
PREFIXES_PER_DEPLOYMENT = 4096
#: How long a deployment counts as holding a prompt it served (``routing.affinity_ttl_seconds``).
DEFAULT_TTL_SECONDS = 600.0

#: A balanced request's outcomes (`AffinityIndex.count`), named where they are counted.
HIT, MISS, LOAD_OVERRIDE = AFFINITY_HIT, AFFINITY_MISS, AFFINITY_LOAD_OVERRIDE

#: The reason on an attempt that load balancing placed (`Attempt.affinity`).
LOAD = "load"
#: The reason on an attempt that a conversation key placed.
KEY = "key"
#: The reason on an attempt that a new conversation's spreading placed (`AffinityIndex.emptiest`).
SPREAD = "spread"
#: A new conversation goes to the deployment holding the fewest prefixes among those whose
#: latency band is at most this many bands (`LATENCY_BAND`, 1.25x each: 3 is ~2x) above the
#: fastest: a cold prompt's time varies by more than one band between equal servers, while a
#: really faster host stays preferred.
SPREAD_BANDS = 3


#: The reasons ``prefix:N`` for the usual N, made once rather than formatted per request.
_PREFIX_REASONS = tuple(f"prefix:{length}" for length in range(256))


def prefix_reason(length: int) -> str:
    """The reason on an attempt that the prefix of ``length`` messages it holds placed."""
    return _PREFIX_REASONS[length] if length < 256 else f"prefix:{length}"


def rendezvous(key: str, endpoints: Sequence[str]) -> int:
    """The index of ``key``'s deployment among ``endpoints`` by rendezvous (highest random
    weight) hashing: the same in every process, and an endpoint leaving moves only the keys
    it had."""
    best, best_score = 0, b""
    for index, endpoint in enumerate(endpoints):
        score = hashlib.blake2b(
            f"{key}\x00{endpoint}".encode(), digest_size=8, person=b"forge-rv"
        ).digest()
        if score > best_score:
            best, best_score = index, score
    return best


class RequestAffinity:
    """What affinity knows of one request: its conversation key, its prefix digests (worked
    out on first use, once), and why each balanced candidate was placed where it was."""

    __slots__ = ("_digests", "_request", "chosen", "held", "key", "outcome", "use_prefix")

    def __init__(self, request: ChatRequest, *, use_prefix: bool) -> None:
        self._request = request
        self._digests: Digests | None = None
        #: The request's conversation key (``prompt_cache_key``), if any.
        self.key: str | None = request.prompt_cache_key
        #: Whether the learned prefixes count (``routing.affinity: prefix``).
        self.use_prefix = use_prefix
        #: model -> (the endpoint affinity put first, or None; why; the endpoints balanced)
        #: for each balanced model.
        self.chosen: dict[str, tuple[str | None, str, Mapping[str, int]]] = {}
        #: The request's outcome (`HIT`, `MISS`, `LOAD_OVERRIDE`), counted once, at its first
        #: balanced choice; None before.
        self.outcome: str | None = None
        #: (endpoint, model, how many leading messages it holds) of the prefix found for this
        #: request, if one was.
        self.held: tuple[str, str, int] | None = None

    @property
    def digests(self) -> Digests:
        """`prefix_digests` of the request, computed on first use."""
        digests = self._digests
        if digests is None:
            digests = self._digests = prefix_digests(self._request)
        return digests

    def known(self, endpoint: str, model: str) -> int:
        """How many of this request's leading digests ``endpoint`` holds for ``model`` already
        (the prefix affinity found there), 0 when it found none there."""
        held = self.held
        return held[2] if held is not None and held[0] == endpoint and held[1] == model else 0

    def reason(self, endpoint: str, model: str) -> str | None:
        """Why the candidate at ``endpoint`` for ``model`` was placed: the affinity reason for
        the one it put first, ``load`` for the other balanced ones, None when unbalanced."""
        found = self.chosen.get(model) if self.chosen else None
        if found is None or endpoint not in found[2]:
            return None
        return found[1] if found[0] == endpoint else LOAD


def _by_stamp(item: tuple[str, int]) -> int:
    return item[1]


def _uncounted(outcome: str) -> None:
    """No count kept (an index without a router)."""


class AffinityIndex:
    """Which deployment served which message prefixes, per endpoint and model; thread-safe.

    Each endpoint keeps at most ``per_deployment`` prefixes, the least recently served out
    first, each for ``ttl`` seconds; a reverse map (prefix -> endpoint -> when) makes a lookup
    cost one dict read per message of the request, whatever the number of deployments.

    With ``shared`` state (Redis), what this process serves is published (queued, written by
    the store's publisher thread: no round trip on the request's thread) and what the other
    processes served is merged in with the store's view refreshes (`SharedState.learn_prefixes`),
    so a conversation's next turn finds its deployment in any process of the fleet. Lookups
    stay local: the shared part costs no round trip of its own.
    """

    def __init__(
        self,
        *,
        mode: str = "prefix",
        imbalance: int = 2,
        per_deployment: int = PREFIXES_PER_DEPLOYMENT,
        ttl: float = DEFAULT_TTL_SECONDS,
        count: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedState | None = None,
    ) -> None:
        if per_deployment < 1:
            raise ValueError("per_deployment must be at least 1")
        #: ``routing.affinity``: prefix, key or off.
        self.mode = mode
        #: ``routing.affinity_imbalance``: in-flight attempts above the least loaded that a
        #: deployment may have and still keep its conversations.
        self.imbalance = imbalance
        self._per_deployment = per_deployment
        self._ttl = ttl
        self._ttl_us = int(ttl * 1e6)
        #: Counts one request's outcome: ``hit``, ``miss`` or ``load_override``.
        self.count: Callable[[str], None] = count if count is not None else _uncounted
        self._clock = clock
        self._lock = threading.Lock()
        #: The last stamp given: microseconds on ``clock``, strictly increasing.
        self._last_stamp = 0
        #: model -> digest -> endpoint -> the stamp of its last serving.
        self._holders: dict[str, dict[bytes, dict[str, int]]] = {}
        #: endpoint -> its (model, digest)s, least recently served first.
        self._held: dict[str, OrderedDict[tuple[str, bytes], None]] = {}
        self._shared = shared if mode == "prefix" else None
        if self._shared is not None:
            self._shared.learn_prefixes(self.learned)

    def close(self) -> None:
        """Stop learning from the fleet (the router is closed)."""
        if self._shared is not None:
            self._shared.forget_prefixes(self.learned)

    def begin(self, request: object) -> RequestAffinity | None:
        """The per-request part for ``request``; None when affinity is off or it is no chat."""
        if self.mode == "off" or not isinstance(request, ChatRequest):
            return None
        return RequestAffinity(request, use_prefix=self.mode == "prefix")

    def served(self, endpoint: str, model: str, digests: Sequence[bytes], known: int = 0) -> None:
        """``endpoint`` answered ``model`` for the message sequence of ``digests``: it holds
        every prefix of it now (and the fleet learns it, when shared). The first ``known`` it
        held already (`RequestAffinity.known`) keep their stamps: a conversation's next turn
        records its new messages only, and its latest prefix, the one the turn after looks
        up, is always fresh."""
        if known:
            # An identical request again: its whole prompt is the latest served there.
            digests = digests[known:] if known < len(digests) else digests[-1:]
        if not digests:
            return
        with self._lock:
            now, last = int(self._clock() * 1e6), self._last_stamp
            stamp = self._last_stamp = now if now > last else last + 1
            self._hold(endpoint, model, digests, stamp)
        if self._shared is not None:
            self._shared.share_prefixes(
                endpoint, model, digests, limit=self._per_deployment, ttl=self._ttl
            )

    def learned(self, entries: Sequence[SharedPrefixes]) -> None:
        """What other processes served, ``age`` seconds ago (`SharedState.learn_prefixes`):
        held as if served here then, unless this process knows of a later serving."""
        with self._lock:
            now = int(self._clock() * 1e6)
            for endpoint, model, digests, age in entries:
                if digests and age < self._ttl:
                    self._hold(endpoint, model, digests, now - int(age * 1e6))

    def _hold(self, endpoint: str, model: str, digests: Sequence[bytes], stamp: int) -> None:
        """Record (under the lock) that ``endpoint`` holds every prefix of ``digests``."""
        held = self._held.get(endpoint)
        if held is None:
            held = self._held[endpoint] = OrderedDict()
        holders = self._holders.get(model)
        if holders is None:
            holders = self._holders[model] = {}
        move_to_end = held.move_to_end
        for digest in digests:
            key = (model, digest)
            found = holders.get(digest)
            if found is None:
                holders[digest] = {endpoint: stamp}
            elif next(reversed(found)) == endpoint:
                # The common case, a conversation's next turn where its last one went: this
                # endpoint is the latest holder already and stays last with the later stamp.
                if found[endpoint] < stamp:
                    found[endpoint] = stamp
            else:
                # Kept in stamp order, the latest last, so a lookup reads from the end and
                # stops at the first usable holder, however many deployments hold the prefix
                # (a shared system prompt: all of them).
                before = found.pop(endpoint, None)
                # (When this process knows of a later serving, that one stays.)
                stamp_here = before if before is not None and before > stamp else stamp
                if not found or next(reversed(found.values())) <= stamp_here:
                    found[endpoint] = stamp_here
                else:  # older than the latest (learned from the fleet): put it in its place
                    found[endpoint] = stamp_here
                    holders[digest] = dict(sorted(found.items(), key=_by_stamp))
            try:
                move_to_end(key)
            except KeyError:
                held[key] = None
        while len(held) > self._per_deployment:
            (old_model, old), _ = held.popitem(last=False)
            of_model = self._holders[old_model]
            found = of_model.get(old)
            if found is not None:
                found.pop(endpoint, None)
                if not found:
                    del of_model[old]

    def longest(
        self,
        model: str,
        digests: Sequence[bytes],
        positions: Mapping[str, int],
        allowed: Callable[[int], bool] | None = None,
    ) -> tuple[int, int] | None:
        """Among the endpoints of ``positions`` (endpoint -> index) that are ``allowed``:
        (the index of the one that most recently served the longest prefix of ``digests``
        within the TTL, that prefix's length in messages); None when none holds any."""
        # A float: the int stamps compare with it exactly, and no int() to call.
        oldest = self._clock() * 1e6 - self._ttl_us
        with self._lock:
            holders = self._holders.get(model)
            if holders is None:
                return None
            for length in range(len(digests), 0, -1):
                found = holders.get(digests[length - 1])
                if not found:
                    continue
                for endpoint, stamp in reversed(found.items()):  # the latest first
                    if stamp <= oldest:
                        break  # expired, and every one before it too
                    index = positions.get(endpoint)
                    if index is not None and (allowed is None or allowed(index)):
                        return index, length
        return None

    def emptiest(self, endpoints: Sequence[str], start: int = 0) -> int:
        """The index among ``endpoints`` of the one holding the fewest prefixes; among equals
        the first from ``start`` on (round the end), so that equals take turns."""
        with self._lock:
            held = self._held
            sizes = [len(held.get(endpoint, ())) for endpoint in endpoints]
        count = len(sizes)
        return min(range(count), key=lambda at: (sizes[at], (at - start) % count))

    def size(self, endpoint: str) -> int:
        """How many prefixes ``endpoint``'s index holds."""
        with self._lock:
            held = self._held.get(endpoint)
            return len(held) if held is not None else 0

    def forget(self, endpoint: str) -> None:
        """Drop everything ``endpoint`` served (a host that left)."""
        with self._lock:
            for model, digest in self._held.pop(endpoint, ()):
                of_model = self._holders[model]
                found = of_model.get(digest)
                if found is not None:
                    found.pop(endpoint, None)
                    if not found:
                        del of_model[digest]
