"""The pool of loaded local models, shared by the whole process.

One `LoadedModel` per model file, purpose (chat or embed) and settings (`model_key`), shared by
every backend (so by ``ForgeChat``, ``ForgeLLM``, ``ForgeEmbedding`` and the CLI). It holds
``parallel`` instances (default one) in a queue: a request takes an instance (`instance`),
generates, and puts it back, so an instance is never used by two threads at once and requests
beyond ``parallel`` wait their turn. A model idle for ``keep_alive_seconds`` is unloaded by a
daemon timer. With ``isolation: process`` each instance is a worker process
(`forge_core.backends.local.worker.WorkerInstance`); with ``thread``, an engine object in this
process (`forge_core.backends.local.engine.make_instance`).
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import time
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
from forge_core.types import Provider

__all__ = [
    "LOAD_TIMEOUT",
    "LoadedModel",
    "ModelKey",
    "checkin",
    "checkout",
    "instance",
    "loaded_models",
    "model_key",
    "unload_models",
]

_PROVIDER = Provider.HUGGINGFACE.value
#: Seconds a worker may take to load a model when no request deadline bounds it (`warm`).
LOAD_TIMEOUT = 600.0

#: A loaded model's identity in the pool (`model_key`).
ModelKey = tuple[Any, ...]


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
    idle: queue.Queue[Any] = field(default_factory=queue.Queue)
    #: Requests holding or waiting for an instance; a model in use is never unloaded.
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)
    requests: int = 0
    output_tokens: int = 0
    generation_seconds: float = 0.0
    queue_wait_total: float = 0.0
    queue_wait_max: float = 0.0
    timer: threading.Timer | None = None

    def __post_init__(self) -> None:
        for instance in self.instances:
            self.idle.put(instance)

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
            "idle_seconds": time.monotonic() - self.last_used,
            "keep_alive_seconds": self.keep_alive,
        }

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for instance in self.instances:
            instance.close()
        self.instances.clear()


_loaded: dict[ModelKey, LoadedModel] = {}
_loaded_lock = threading.RLock()
#: Loading takes seconds; it happens under this lock so two callers never load the same file.
_loading_lock = threading.Lock()


def unload_models(*, idle_for: float | None = None) -> list[str]:
    """Unload loaded models nobody is using (all, or those idle ``idle_for`` seconds or more).

    Returns the names unloaded. The keep-alive timers call this for their own model; tests and
    long-running hosts may call it to free memory at once.
    """
    unloaded = []
    now = time.monotonic()
    with _loaded_lock:
        for key, loaded in list(_loaded.items()):
            if loaded.users == 0 and (idle_for is None or now - loaded.last_used >= idle_for):
                loaded.close()
                del _loaded[key]
                unloaded.append(loaded.name)
    return unloaded


def loaded_models() -> list[LoadedModel]:
    """The models loaded in this process now."""
    with _loaded_lock:
        return list(_loaded.values())


def _unload_if_idle(key: ModelKey, loaded: LoadedModel) -> None:
    with _loaded_lock:
        if (
            _loaded.get(key) is loaded
            and loaded.users == 0
            and loaded.keep_alive is not None
            and time.monotonic() - loaded.last_used >= loaded.keep_alive * 0.999
        ):
            loaded.close()
            del _loaded[key]


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
) -> tuple[ModelKey, LoadedModel]:
    """The loaded model, loading it if needed, counted as in use until `checkin`."""
    key = model_key(resolved, config, purpose)
    with _loaded_lock:
        loaded = _loaded.get(key)
        if loaded is not None:
            loaded.users += 1
            return key, loaded
    with _loading_lock:
        with _loaded_lock:
            loaded = _loaded.get(key)
            if loaded is not None:
                loaded.users += 1
                return key, loaded
        loaded = _load(resolved, config, key, load_timeout, purpose)
        with _loaded_lock:
            loaded.users += 1
            _loaded[key] = loaded
        return key, loaded


def checkin(key: ModelKey, loaded: LoadedModel) -> None:
    """Release one use of ``loaded``; the last one starts its keep-alive timer."""
    with _loaded_lock:
        loaded.users -= 1
        loaded.last_used = time.monotonic()
        if loaded.timer is not None:
            loaded.timer.cancel()
            loaded.timer = None
        if loaded.users == 0 and loaded.keep_alive is not None:
            timer = threading.Timer(loaded.keep_alive, _unload_if_idle, (key, loaded))
            timer.daemon = True
            loaded.timer = timer
            timer.start()


@contextlib.contextmanager
def instance(
    resolved: ResolvedModel,
    config: HuggingFaceConfig,
    timeouts: AttemptTimeouts,
    queued_at: float | None,
    purpose: Purpose = "chat",
) -> Iterator[tuple[LoadedModel, Any, float]]:
    """An instance of ``resolved`` for this thread alone, and the seconds waited for it.

    The wait runs from ``queued_at`` (when an async call was handed to the local threads;
    None: now) to holding an instance, less the time spent loading the model for it.
    """
    before_checkout = time.perf_counter()
    queued_at = before_checkout if queued_at is None else queued_at
    key, loaded = checkout(resolved, config, timeouts.remaining(), purpose)
    loading = min(time.perf_counter() - before_checkout, loaded.load_seconds)
    try:
        try:
            instance = loaded.idle.get(timeout=timeouts.remaining())
        except queue.Empty:
            raise ForgeTimeout(
                f"huggingface: {resolved.name} stayed busy until the deadline",
                provider=_PROVIDER,
                model=resolved.name,
            ) from None
        waited = max(time.perf_counter() - queued_at - loading, 0.0)
        try:
            yield loaded, instance, waited
        finally:
            loaded.idle.put(instance)
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
