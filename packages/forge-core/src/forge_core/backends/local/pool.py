"""The pool of loaded local models, shared by the whole process.

One `LoadedModel` per model file, purpose (chat or embed) and settings (`model_key`), shared by
every backend (so by ``ForgeChat``, ``ForgeLLM``, ``ForgeEmbedding`` and the CLI). It holds
``parallel`` instances (default one): a request takes an idle instance (`instance`,
`LoadedModel.take`), generates, and gives it back, so an instance is never used by two threads
at once and requests beyond ``parallel`` wait their turn. Among the idle instances a request
takes the one whose last prompt shares the most leading messages with its own (prefix
affinity, #32: llama-cpp-python reuses the longest prefix of the prompt it holds, so the next
turn of a conversation costs its new messages there and the whole prompt on another
instance); an idle instance is always taken before waiting for a busy one. A model idle for ``keep_alive_seconds`` is unloaded by its
keep-alive thread (one per loaded model, not one per request). The backends that used a model
are its holders (weakly); when the last one is closed (`release`, from `Forge.close`) the model
is unloaded, at once or when its last request ends. With ``isolation: process`` each instance
is a worker process (`forge_core.backends.local.worker.WorkerInstance`); with ``thread``, an
engine object in this process (`forge_core.backends.local.engine.make_instance`).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.backends.base import AttemptTimeouts
from forge_core.backends.local.engine import Purpose, make_instance
from forge_core.backends.local.worker import WorkerInstance
from forge_core.config.local_models import ResolvedModel, gpu_layers
from forge_core.config.sections import HuggingFaceConfig
from forge_core.errors import ForgeTimeout
from forge_core.prefixes import Digests, common_prefix, prefix_digests
from forge_core.types import ChatRequest, Provider

__all__ = [
    "LOAD_TIMEOUT",
    "LoadedModel",
    "ModelKey",
    "checkin",
    "checkout",
    "instance",
    "loaded_models",
    "model_key",
    "release",
    "unload_models",
]

_PROVIDER = Provider.HUGGINGFACE.value
#: Seconds a worker may take to load a model when no request deadline bounds it (`warm`).
LOAD_TIMEOUT = 600.0

#: How long unloading a model waits for its keep-alive thread to end.
_WATCHER_JOIN_SECONDS = 1.0

#: A loaded model's identity in the pool (`model_key`).
ModelKey = tuple[Any, ...]

#: Guards the pool and every `LoadedModel`'s counts (re-entrant: closing takes it again).
_loaded_lock = threading.RLock()


@dataclass
class LoadedModel:
    """``parallel`` instances of one model, and what they have done."""

    name: str
    path: Path
    format: str
    purpose: Purpose
    isolation: str
    keep_alive: float | None
    instances: list[Any]
    load_seconds: float
    resident_bytes: int
    #: The instances no request holds, the most recently given back last.
    idle: list[Any] = field(default_factory=list)
    #: Signalled when an instance is given back (on its own lock: not `_loaded_lock`).
    freed: threading.Condition = field(default_factory=threading.Condition)
    #: id(instance) -> the prefix digests of the last prompt it was given.
    holding: dict[int, Digests] = field(default_factory=dict)
    #: Requests that went to an idle instance holding a prefix of their messages.
    prefix_hits: int = 0
    #: Requests holding or waiting for an instance; a model in use is never unloaded.
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    requests: int = 0
    output_tokens: int = 0
    generation_seconds: float = 0.0
    queue_wait_total: float = 0.0
    queue_wait_max: float = 0.0
    #: Unloads the model once idle ``keep_alive`` seconds (`_watch_idle`); started at the
    #: first idle moment, woken through ``woken`` (on `_loaded_lock`) by each end of a use.
    watcher: threading.Thread | None = None
    woken: threading.Condition = field(default_factory=lambda: threading.Condition(_loaded_lock))
    closed: bool = False
    #: The backends that used this model and are not closed (`release`).
    holders: weakref.WeakSet[object] = field(default_factory=weakref.WeakSet)
    #: Its last holder was closed while requests were using it: unload when they end.
    unload_when_idle: bool = False

    def __post_init__(self) -> None:
        self.idle.extend(self.instances)

    def take(self, timeout: float, request: ChatRequest | None = None) -> Any:
        """An idle instance for the caller alone, waiting at most ``timeout`` seconds for one
        (None when none was given back in time). With several idle, the one whose last prompt
        shares the most leading messages with ``request``'s (`common_prefix`), else the one
        idle longest (the others keep what they hold)."""
        with self.freed:
            if not self.idle and not self.freed.wait_for(lambda: bool(self.idle), timeout):
                return None
            idle = self.idle
            chosen = 0
            if len(idle) > 1 and request is not None and self.holding:
                digests = prefix_digests(request)
                best = 0
                for i, candidate in enumerate(idle):
                    shared = common_prefix(self.holding.get(id(candidate), ()), digests)
                    if shared > best:
                        chosen, best = i, shared
                if best:
                    self.prefix_hits += 1
                self.holding[id(idle[chosen])] = digests
            elif len(self.instances) > 1 and request is not None:
                self.holding[id(idle[0])] = prefix_digests(request)
            return idle.pop(chosen)

    def give_back(self, instance: Any) -> None:
        """``instance`` is idle again."""
        with self.freed:
            self.idle.append(instance)
            self.freed.notify()

    def record(self, *, waited: float, tokens: int, seconds: float) -> None:
        with _loaded_lock:
            self.requests += 1
            self.output_tokens += tokens
            self.generation_seconds += seconds
            self.queue_wait_total += waited
            self.queue_wait_max = max(self.queue_wait_max, waited)

    def stats(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "path": str(self.path),
            "format": self.format,
            "purpose": self.purpose,
            "isolation": self.isolation,
            "instances": len(self.instances),
            "worker_pids": [
                instance.pid for instance in self.instances if isinstance(instance, WorkerInstance)
            ],
            "load_seconds": self.load_seconds,
            "resident_bytes": self.resident_bytes,
            "requests": self.requests,
            "in_use_or_waiting": self.users,
            "output_tokens": self.output_tokens,
            "tokens_per_second": (
                self.output_tokens / self.generation_seconds if self.generation_seconds else None
            ),
            "queue_wait_seconds_mean": (
                self.queue_wait_total / self.requests if self.requests else None
            ),
            "queue_wait_seconds_max": self.queue_wait_max,
            "prefix_hits": self.prefix_hits,
            "idle_seconds": time.monotonic() - self.last_used,
            "keep_alive_seconds": self.keep_alive,
        }

    def close(self) -> None:
        """Close the instances (stop the worker processes) and end the keep-alive thread
        (under `_loaded_lock`; `_join_watchers` waits for it once the lock is let go)."""
        with _loaded_lock:
            self.closed = True
            self.woken.notify_all()
        for instance in self.instances:
            instance.close()
        self.instances.clear()
        self.holding.clear()


_loaded: dict[ModelKey, LoadedModel] = {}
#: Loading takes seconds; it happens under this lock so two callers never load the same file.
_loading_lock = threading.Lock()


def unload_models(*, idle_for: float | None = None) -> list[str]:
    """Unload loaded models nobody is using (all, or those idle ``idle_for`` seconds or more).

    Returns the names unloaded. The keep-alive timers call this for their own model; tests and
    long-running hosts may call it to free memory at once.
    """
    unloaded = []
    now = time.monotonic()
    closed = []
    with _loaded_lock:
        for key, loaded in list(_loaded.items()):
            if loaded.users == 0 and (idle_for is None or now - loaded.last_used >= idle_for):
                loaded.close()
                del _loaded[key]
                unloaded.append(loaded.name)
                closed.append(loaded)
    _join_watchers(closed)
    return unloaded


def release(holder: object) -> list[str]:
    """``holder`` (a closed backend) uses its models no more; those no other holder uses are
    unloaded (their worker processes stopped) now, or when their last request ends.

    Returns the names unloaded now.
    """
    unloaded = []
    closed = []
    with _loaded_lock:
        for key, loaded in list(_loaded.items()):
            if holder not in loaded.holders:
                continue
            loaded.holders.discard(holder)
            if len(loaded.holders):
                continue
            if loaded.users == 0:
                loaded.close()
                del _loaded[key]
                unloaded.append(loaded.name)
                closed.append(loaded)
            else:
                loaded.unload_when_idle = True
    _join_watchers(closed)
    return unloaded


def _join_watchers(closed: list[LoadedModel]) -> None:
    """Wait for the keep-alive threads of models just closed (outside `_loaded_lock`, which
    they need to notice)."""
    for loaded in closed:
        watcher = loaded.watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(_WATCHER_JOIN_SECONDS)


def loaded_models() -> list[LoadedModel]:
    """The models loaded in this process now."""
    with _loaded_lock:
        return list(_loaded.values())


def _watch_idle(key: ModelKey, loaded: LoadedModel, keep_alive: float) -> None:
    """``loaded``'s keep-alive thread: unload it once nobody has used it for ``keep_alive``
    seconds; ends when the model is closed."""
    with _loaded_lock:
        while not loaded.closed:
            idle = time.monotonic() - loaded.last_used
            if loaded.users == 0 and idle >= keep_alive * 0.999:
                if _loaded.get(key) is loaded:
                    del _loaded[key]
                loaded.close()
                return
            loaded.woken.wait(keep_alive - idle if loaded.users == 0 else None)


@atexit.register
def _close_loaded_models() -> None:
    # Llama.__del__ at interpreter teardown calls into half-destroyed modules; close first.
    with _loaded_lock:
        for loaded in _loaded.values():
            loaded.close()
        _loaded.clear()


def model_key(
    resolved: ResolvedModel, config: HuggingFaceConfig, purpose: Purpose = "chat"
) -> ModelKey:
    """What makes two loads the same: the file, its purpose and every setting that shapes it."""
    return (
        purpose,
        str(resolved.path),
        resolved.format,
        config.n_ctx,
        gpu_layers(config.device) if resolved.format == "gguf" else 0,
        resolved.chat_format,
        config.parallel,
        config.n_threads,
        config.isolation,
    )


def checkout(
    resolved: ResolvedModel,
    config: HuggingFaceConfig,
    load_timeout: float = LOAD_TIMEOUT,
    purpose: Purpose = "chat",
    holder: object | None = None,
) -> tuple[ModelKey, LoadedModel]:
    """The loaded model, loading it if needed, counted as in use until `checkin`;
    ``holder`` (a backend) becomes one of its holders (`release`)."""
    key = model_key(resolved, config, purpose)
    with _loaded_lock:
        loaded = _loaded.get(key)
        if loaded is not None:
            _use(loaded, holder)
            return key, loaded
    with _loading_lock:
        with _loaded_lock:
            loaded = _loaded.get(key)
            if loaded is not None:
                _use(loaded, holder)
                return key, loaded
        loaded = _load(resolved, config, key, load_timeout, purpose)
        with _loaded_lock:
            _use(loaded, holder)
            _loaded[key] = loaded
        return key, loaded


def _use(loaded: LoadedModel, holder: object | None) -> None:
    """Count one use of ``loaded`` (under `_loaded_lock`)."""
    loaded.users += 1
    if holder is not None:
        loaded.holders.add(holder)
        loaded.unload_when_idle = False


def checkin(key: ModelKey, loaded: LoadedModel) -> None:
    """Release one use of ``loaded``; the last one re-arms its keep-alive thread (or unloads
    it, when its last holder was closed meanwhile)."""
    with _loaded_lock:
        loaded.users -= 1
        loaded.last_used = time.monotonic()
        if loaded.users == 0 and loaded.unload_when_idle and not len(loaded.holders):
            if _loaded.get(key) is loaded:
                del _loaded[key]
            loaded.close()
            return
        if loaded.users == 0 and loaded.keep_alive is not None and not loaded.closed:
            if loaded.watcher is None:
                loaded.watcher = threading.Thread(
                    target=_watch_idle,
                    args=(key, loaded, loaded.keep_alive),
                    name=f"forge-keep-alive-{loaded.name}",
                    daemon=True,
                )
                loaded.watcher.start()
            else:
                loaded.woken.notify_all()


@contextlib.contextmanager
def instance(
    resolved: ResolvedModel,
    config: HuggingFaceConfig,
    timeouts: AttemptTimeouts,
    queued_at: float | None,
    purpose: Purpose = "chat",
    holder: object | None = None,
    request: ChatRequest | None = None,
) -> Iterator[tuple[LoadedModel, Any, float]]:
    """An instance of ``resolved`` for this thread alone, and the seconds waited for it
    (``holder``: as for `checkout`; ``request``: the chat it is for, so that it goes to the
    instance holding its prompt, `LoadedModel.take`).

    The wait runs from ``queued_at`` (when an async call was handed to the local threads;
    None: now) to holding an instance, less the time spent loading the model for it.
    """
    before_checkout = time.perf_counter()
    queued_at = before_checkout if queued_at is None else queued_at
    key, loaded = checkout(resolved, config, timeouts.remaining(), purpose, holder)
    loading = min(time.perf_counter() - before_checkout, loaded.load_seconds)
    try:
        instance = loaded.take(timeouts.remaining(), request)
        if instance is None:
            raise ForgeTimeout(
                f"huggingface: {resolved.name} stayed busy until the deadline",
                provider=_PROVIDER,
                model=resolved.name,
            ) from None
        waited = max(time.perf_counter() - queued_at - loading, 0.0)
        try:
            yield loaded, instance, waited
        finally:
            loaded.give_back(instance)
    finally:
        checkin(key, loaded)


def _load(
    resolved: ResolvedModel,
    config: HuggingFaceConfig,
    key: ModelKey,
    timeout: float,
    purpose: Purpose,
) -> LoadedModel:
    import psutil

    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    instances: list[Any] = []
    try:
        for _ in range(config.parallel):
            if config.isolation == "process":
                instances.append(
                    WorkerInstance(
                        resolved,
                        config,
                        crash_key=key,
                        load_timeout=timeout,
                        purpose=purpose,
                    )
                )
            else:
                instances.append(make_instance(resolved, config, purpose))
    except BaseException:
        for instance in instances:
            instance.close()
        raise
    if config.isolation == "process":
        resident = sum(instance.resident_bytes() for instance in instances)
    else:
        resident = max(process.memory_info().rss - rss_before, 0)
    return LoadedModel(
        name=resolved.name,
        path=resolved.path,
        format=resolved.format,
        purpose=purpose,
        isolation=config.isolation,
        keep_alive=config.keep_alive_seconds,
        instances=instances,
        load_seconds=time.perf_counter() - started,
        resident_bytes=resident,
    )
