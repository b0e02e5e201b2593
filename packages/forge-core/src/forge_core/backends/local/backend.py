"""The ``huggingface`` provider: local models that forge runs itself.

GGUF files run in llama-cpp-python (the ``forge-core[llama]`` extra); ONNX model directories in
onnxruntime (``forge-core[onnx]``); both are imported on first use only. The engines live in
`forge_core.backends.local.engine`, the loaded models in `forge_core.backends.local.pool`;
this module is the backend: readiness, capabilities, health, and generation over the pool.

Isolation: with ``isolation: process`` (the default) every loaded instance is a worker process
of forge's own (`forge_core.backends.local.worker`): a segfault, abort or OOM kill in native
code fails one attempt with `WorkerCrashed` and the router falls back, where in process it would
end the application. ``isolation: thread`` runs the model inside this process.

Lifecycle: loaded models live in one pool per process (`forge_core.backends.local.pool`),
shared by every backend, chat and embeddings alike; closing a backend (`close`, from
`Forge.close`) unloads the ones no other open backend uses. Async calls run on a thread of their own
(`forge_core._threads.in_thread`), never on the event loop nor the loop's default executor
(which the loop also needs for DNS lookups), so requests waiting for one busy model never keep
another model's requests from starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from forge_core._threads import in_thread
from forge_core.backends import profiles
from forge_core.backends.base import DEFAULT_HEALTH_TIMEOUT, AttemptTimeouts, InProcessModel
from forge_core.backends.local import pool as _local_pool
from forge_core.backends.local.engine import (
    LLAMA_HINT,
    ONNX_HINT,
    REPEAT_PENALTY,
    Generation,
    Purpose,
    chat_format_for,
    embed_texts,
    generate,
    generation_for,
)
from forge_core.backends.local.pool import LoadedModel
from forge_core.backends.local.worker import (
    CrashRecord,
    RuntimeCheck,
    WorkerInstance,
    crash_record,
    runtime_check,
)
from forge_core.config.local_models import (
    EMBEDDED_MODEL,
    resolve_local_model,
)
from forge_core.config.sections import HuggingFaceConfig
from forge_core.errors import MissingDependency, ProviderError
from forge_core.types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    Provider,
    RouteTrail,
    ToolCall,
    ToolCallDelta,
)

__all__ = [
    "REPEAT_PENALTY",
    "HuggingFaceBackend",
    "LlamaCppBackend",
    "LocalRuntimeReport",
    "chat_format_for",
]

_PROVIDER = Provider.HUGGINGFACE.value
#: Seconds the runtime check (load in a child process, generate one token) may take.
_RUNTIME_CHECK_TIMEOUT = 120.0
#: Seconds a failed runtime check is trusted before it runs again (a passed one is kept for
#: the process: the build and the model file do not change under it).
FAILED_CHECK_RETRY_SECONDS = 60.0
#: Worker deaths in a row, without one finished answer, after which health reports down.
CRASHES_UNTIL_DOWN = 3


#: Runtime checks done in this process, by model key: each model and settings is checked once.
_runtime_checks: dict[tuple[Any, ...], RuntimeCheck] = {}
_runtime_checks_lock = threading.Lock()


@dataclass(frozen=True)
class LocalRuntimeReport:
    """What `HuggingFaceBackend.runtime_report` found for one model."""

    model: str
    #: ``up`` or ``down``.
    status: str
    reason: str
    crashes: CrashRecord


# -- the backend ----------------------------------------------------------------------------------


class HuggingFaceBackend:
    """Chat with local models in this process: GGUF via llama-cpp-python, ONNX via onnxruntime.

    Example:
        ```python
        backend = HuggingFaceBackend(HuggingFaceConfig(models=[{"name": "smollm2-135m"}]))
        backend.warm()
        print(backend.stats()["models"])
        ```
    """

    provider = Provider.HUGGINGFACE

    def __init__(self, config: HuggingFaceConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(models={[m.name for m in self._config.models]!r})"

    def default_model(self) -> str:
        """The first configured model, else the embedded model (`EMBEDDED_MODEL`)."""
        return self._config.models[0].name if self._config.models else EMBEDDED_MODEL

    def check_ready(self, model: str) -> None:
        """The model resolves on disk and its runtime is installed (nothing is loaded)."""
        resolved = resolve_local_model(model, self._config)
        if resolved.format == "onnx":
            missing = [
                name
                for name in ("onnxruntime", "tokenizers", "numpy")
                if importlib.util.find_spec(name) is None
            ]
            if missing:
                raise MissingDependency(
                    f"huggingface: running ONNX models needs {', '.join(missing)}: {ONNX_HINT}",
                    provider=_PROVIDER,
                    model=model,
                )
        elif importlib.util.find_spec("llama_cpp") is None:
            raise MissingDependency(
                f"huggingface: running GGUF models needs llama-cpp-python: {LLAMA_HINT}",
                provider=_PROVIDER,
                model=model,
            )

    def capabilities(self, model: str) -> Capabilities:
        """GGUF: grammar-constrained JSON and tool calls; ONNX: plain text. Both stream."""
        try:
            onnx = resolve_local_model(model, self._config).format == "onnx"
        except ProviderError:
            onnx = False
        return profiles.ONNX if onnx else profiles.gguf(self._config.n_ctx)

    def warm(self, models: list[str] | None = None) -> list[str]:
        """Load ``models`` (default: every configured one, else the embedded model) now."""
        names = models or self._model_names()
        for name in names:
            resolved = resolve_local_model(name, self._config)
            key, loaded = _local_pool.checkout(resolved, self._config, holder=self)
            _local_pool.checkin(key, loaded)
        return names

    def _model_names(self) -> list[str]:
        """The configured models' names, else the embedded model's."""
        return [entry.name for entry in self._config.models] or [EMBEDDED_MODEL]

    def close(self) -> None:
        """This backend is done (its `Forge` is closed): the models it used are unloaded, and
        their worker processes stopped, unless another open backend uses them too
        (`forge_core.backends.local.pool.release`)."""
        _local_pool.release(self)

    def isolation_description(self) -> str:
        """Where this backend's models run, in words (for ``forge health``)."""
        if self._config.isolation == "process":
            return "in a worker process"
        return "in process"

    def health(self, timeout: float = DEFAULT_HEALTH_TIMEOUT) -> str:
        """``up`` when the default model's runtime works on this machine, else ``down``.

        The first call per process checks it for real (`runtime_report`: a load and one token
        in a child process), bounded by its own limit rather than ``timeout``, which is meant
        for a network probe and is shorter than any model load.
        """
        try:
            return self.runtime_report().status
        except ProviderError:
            return "down"

    def runtime_report(self, model: str | None = None) -> LocalRuntimeReport:
        """Whether ``model`` (default: the default model) can run here, and why not.

        Down when its workers died `CRASHES_UNTIL_DOWN` times in a row without finishing an
        answer, or when the runtime check failed: ``model`` loaded in a throwaway child process
        that generates one token, once per process and settings (a failed check again after
        `FAILED_CHECK_RETRY_SECONDS`), so a native build that
        crashes on this CPU shows as down with its signal instead of "loads on first request".
        Raises the `ProviderError` of `check_ready` when the model or its runtime is missing.
        """
        model = model or self.default_model()
        self.check_ready(model)
        resolved = resolve_local_model(model, self._config)
        key = _local_pool.model_key(resolved, self._config)
        record = crash_record(key)
        if record.streak >= CRASHES_UNTIL_DOWN:
            return LocalRuntimeReport(
                model,
                "down",
                f"its worker died {record.streak} times in a row without finishing an answer, "
                f"last with {record.last_signal}: {record.last_message}",
                record,
            )
        with _runtime_checks_lock:
            check = _runtime_checks.get(key)
            stale = (
                check is not None
                and not check.ok
                and time.monotonic() - check.checked_at >= FAILED_CHECK_RETRY_SECONDS
            )
            if check is None or stale:
                check = runtime_check(
                    resolved,
                    self._config,
                    crash_key=(*key, "runtime check"),
                    timeout=_RUNTIME_CHECK_TIMEOUT,
                )
                _runtime_checks[key] = check
        return LocalRuntimeReport(model, "up" if check.ok else "down", check.reason, record)

    def runtime_verdict(self) -> tuple[str, str]:
        """The status (``up`` or ``down``) and reason of the default model's `runtime_report`."""
        report = self.runtime_report()
        return report.status, report.reason

    def loaded_model_names(self) -> list[str]:
        """The ``model`` of each loaded model in `stats`."""
        return [str(model.get("model")) for model in self.stats().get("models", [])]

    def in_process_models(self) -> list[InProcessModel]:
        """The configured models (else the embedded model): each one's file size, capabilities
        and whether it is loaded now (for ``forge models``)."""
        loaded = set(self.loaded_model_names())
        models = []
        for name in self._model_names():
            resolved = resolve_local_model(name, self._config)
            capabilities = self.capabilities(name)
            size = resolved.path.stat().st_size if resolved.path.is_file() else None
            models.append(
                InProcessModel(
                    name, size, capabilities, str(resolved.path) in loaded or name in loaded
                )
            )
        return models

    def stats(self) -> dict[str, Any]:
        """Loaded models (load time, resident memory, tokens/s, queue wait) and process RSS."""
        import psutil

        models = [loaded.stats() for loaded in _local_pool.loaded_models()]
        return {"process_rss_bytes": psutil.Process().memory_info().rss, "models": models}

    @contextlib.contextmanager
    def _instance(
        self,
        model: str,
        timeouts: AttemptTimeouts,
        queued_at: float | None,
        purpose: Purpose = "chat",
        request: ChatRequest | None = None,
    ) -> Iterator[tuple[LoadedModel, Any, float]]:
        """A pool instance of ``model`` for this thread alone (`_local_pool.instance`; with
        ``request``, the idle one holding the longest prefix of its prompt)."""
        resolved = resolve_local_model(model, self._config)
        with _local_pool.instance(
            resolved, self._config, timeouts, queued_at, purpose, holder=self, request=request
        ) as held:
            yield held

    # -- generation -------------------------------------------------------------------------

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer, generated in this thread (or, isolated, waited for here)."""
        return self._chat(request, model, timeouts, None)

    def _chat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts, queued_at: float | None
    ) -> ChatResponse:
        text: list[str] = []
        calls: dict[int, ToolCallDelta] = {}
        last: ChatChunk | None = None
        for chunk in self._stream(request, model, timeouts, queued_at):
            text.append(chunk.content)
            for delta in chunk.tool_call_deltas:
                calls[delta.index] = delta
            last = chunk
        tool_calls = [
            ToolCall(
                id=delta.id or "", name=delta.name or "", arguments=json.loads(delta.arguments)
            )
            for _, delta in sorted(calls.items())
        ]
        return ChatResponse(
            content="".join(text) if not tool_calls else None,
            tool_calls=tool_calls,
            finish_reason=last.finish_reason if last else None,
            usage=last.usage if last else None,
            provider=self.provider,
            model=model,
            route=RouteTrail(),
        )

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer piece by piece; the last chunk carries the finish reason and usage."""
        return self._stream(request, model, timeouts, None)

    def _stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts, queued_at: float | None
    ) -> Generator[ChatChunk, None, None]:
        with self._instance(model, timeouts, queued_at, request=request) as (
            loaded,
            instance,
            waited,
        ):
            timeouts.remaining()
            started = time.perf_counter()
            generation: Generation
            if isinstance(instance, WorkerInstance):
                generation = instance.generation(request, model)
            else:
                generation = generation_for(instance, loaded.format, request, model)
            try:
                yield from generate(generation, timeouts, model)
            finally:
                loaded.record(
                    waited=waited,
                    tokens=generation.output_tokens,
                    seconds=time.perf_counter() - started,
                )

    def default_embedding_model(self) -> str:
        """The model that embeds when the request names none: the embedded model, so vectors
        do not change space when a chat model is configured."""
        return EMBEDDED_MODEL

    def embed(self, texts: list[str], model: str, timeouts: AttemptTimeouts) -> EmbeddingResponse:
        """Unit-length vectors of ``texts`` from ``model`` loaded in embedding mode (a pool entry
        of its own, with the same isolation, keep-alive and stats as chat)."""
        with self._instance(model, timeouts, None, "embed") as (loaded, instance, waited):
            started = time.perf_counter()
            try:
                if isinstance(instance, WorkerInstance):
                    vectors = instance.embed(texts, model, timeouts.remaining())
                else:
                    vectors = embed_texts(instance, texts, model)
            finally:
                loaded.record(waited=waited, tokens=0, seconds=time.perf_counter() - started)
        return EmbeddingResponse(vectors=vectors, provider=self.provider, model=model)

    async def aembed(
        self, texts: list[str], model: str, timeouts: AttemptTimeouts
    ) -> EmbeddingResponse:
        """`embed` on a thread of its own, so the event loop is never blocked."""
        return await in_thread(self.embed, texts, model, timeouts)

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """`chat` on a local generation thread."""
        return await in_thread(self._chat, request, model, timeouts, time.perf_counter())

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """`stream` driven from a local generation thread, chunks handed over through a queue."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()
        queued_at = time.perf_counter()

        def produce() -> None:
            generator = self._stream(request, model, timeouts, queued_at)
            try:
                for chunk in generator:
                    if cancelled.is_set():
                        break
                    loop.call_soon_threadsafe(chunks.put_nowait, ("chunk", chunk))
            except BaseException as exc:
                loop.call_soon_threadsafe(chunks.put_nowait, ("error", exc))
            finally:
                generator.close()
                loop.call_soon_threadsafe(chunks.put_nowait, ("end", None))

        worker = in_thread(produce)
        try:
            while True:
                kind, item = await chunks.get()
                if kind == "chunk":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    break
        finally:
            cancelled.set()
            await asyncio.shield(worker)


#: The name this backend had when it ran GGUF files only.
LlamaCppBackend = HuggingFaceBackend
