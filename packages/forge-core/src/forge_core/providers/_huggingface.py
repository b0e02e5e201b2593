"""The ``huggingface`` provider: GGUF models run in process by llama-cpp-python.

llama-cpp-python is an optional extra (``forge-core[llama]``), imported on first use only.
One loaded ``Llama`` per model file per process, shared by every caller; a lock serialises
generation on it because a ``Llama`` is not safe to use from two threads at once. Async calls
run generation in a worker thread so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any

from forge_core._config import HuggingFaceConfig
from forge_core._exceptions import (
    CapabilityMismatch,
    MissingDependency,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
)
from forge_core._local_models import EMBEDDED_MODEL, ResolvedModel, resolve_local_model
from forge_core._types import Capabilities, ChatChunk, ChatRequest, ChatResponse, Provider, Usage
from forge_core.providers._base import AttemptTimeouts
from forge_core.providers._openai_wire import (
    build_body,
    parse_chunk,
    parse_completion,
)

__all__ = ["LlamaCppBackend"]

_EXTRA_HINT = "pip install 'forge-core[llama]'"
#: A base model given no limit rambles until its context is full; cap answers by default.
DEFAULT_MAX_TOKENS = 512


@dataclass
class _LoadedModel:
    llama: Any
    lock: threading.Lock
    load_seconds: float


_loaded: dict[tuple[str, int, int], _LoadedModel] = {}
_loaded_lock = threading.Lock()


@atexit.register
def _close_loaded_models() -> None:
    # Llama.__del__ at interpreter teardown calls into half-destroyed modules; close first.
    with _loaded_lock:
        for loaded in _loaded.values():
            loaded.llama.close()
        _loaded.clear()


class LlamaCppBackend:
    """Chat with local GGUF models through llama-cpp-python, in this process."""

    provider = Provider.HUGGINGFACE

    def __init__(self, config: HuggingFaceConfig) -> None:
        self._config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(models={[m.name for m in self._config.models]!r})"

    def default_model(self) -> str:
        """The first configured model, else the embedded Gemma 3 270M."""
        return self._config.models[0].name if self._config.models else EMBEDDED_MODEL

    def check_ready(self, model: str) -> None:
        """The extra is installed and the model file resolves (nothing is loaded)."""
        if importlib.util.find_spec("llama_cpp") is None:
            raise MissingDependency(
                f"huggingface: running GGUF models needs llama-cpp-python: {_EXTRA_HINT}",
                provider=self.provider.value,
                model=model,
            )
        resolve_local_model(model, self._config)

    def capabilities(self, model: str) -> Capabilities:
        """Grammar-constrained JSON output, streaming, the configured context; no tools yet."""
        return Capabilities(
            structured_output=True,
            json_mode=True,
            streaming=True,
            context_window=self._config.n_ctx,
        )

    # -- loading ----------------------------------------------------------------------------

    def _load(self, model: str) -> _LoadedModel:
        resolved = resolve_local_model(model, self._config)
        key = (str(resolved.path), self._config.n_ctx, self._gpu_layers())
        with _loaded_lock:
            loaded = _loaded.get(key)
            if loaded is None:
                loaded = self._load_file(resolved)
                _loaded[key] = loaded
            return loaded

    def _gpu_layers(self) -> int:
        if self._config.device == "cpu":
            return 0
        if self._config.device == "cuda":
            return -1
        try:
            import llama_cpp

            return -1 if llama_cpp.llama_supports_gpu_offload() else 0
        except (ImportError, AttributeError):
            return 0

    def _load_file(self, resolved: ResolvedModel) -> _LoadedModel:
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingDependency(
                f"huggingface: running GGUF models needs llama-cpp-python: {_EXTRA_HINT}",
                provider=self.provider.value,
                model=resolved.name,
            ) from exc
        started = time.perf_counter()
        try:
            llama = llama_cpp.Llama(
                model_path=str(resolved.path),
                chat_format=resolved.chat_format,
                n_ctx=self._config.n_ctx,
                n_threads=self._config.n_threads,
                n_gpu_layers=self._gpu_layers(),
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelNotFound(
                f"huggingface: cannot load {resolved.path}: {exc}",
                provider=self.provider.value,
                model=resolved.name,
            ) from exc
        return _LoadedModel(llama, threading.Lock(), time.perf_counter() - started)

    # -- generation -------------------------------------------------------------------------

    def _kwargs(self, request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
        body = build_body(request, model, stream=stream, include_usage=False)
        body.pop("model")
        body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        response_format = body.get("response_format")
        if response_format and response_format.get("type") == "json_schema":
            # llama-cpp-python constrains output with a grammar built from a schema given as
            # {"type": "json_object", "schema": ...}; it has no "json_schema" type.
            schema = response_format.get("json_schema", {}).get("schema")
            body["response_format"] = {"type": "json_object", "schema": schema}
        return body

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer, generated in this thread."""
        loaded = self._load(model)
        kwargs = self._kwargs(request, model, stream=False)
        with loaded.lock:
            try:
                data = loaded.llama.create_chat_completion(**kwargs)
            except ValueError as exc:
                raise self._translate(exc, model) from exc
        response = parse_completion(data, self.provider, model)
        return response.model_copy(update={"model": model})

    def stream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> Generator[ChatChunk, None, None]:
        """The answer token by token; the last chunk carries the usage."""
        loaded = self._load(model)
        kwargs = self._kwargs(request, model, stream=True)
        prompt_tokens = 0
        completion_tokens = 0
        with loaded.lock:
            try:
                pieces = loaded.llama.create_chat_completion(**kwargs)
                for data in pieces:
                    chunk = parse_chunk(data, self.provider, model)
                    if chunk.content or chunk.tool_call_deltas:
                        completion_tokens += 1
                    if chunk.finish_reason is not None:
                        # llama-cpp-python's stream has no usage; the context holds exactly the
                        # prompt and the generated tokens once generation ends.
                        prompt_tokens = max(int(loaded.llama.n_tokens) - completion_tokens, 0)
                        chunk = chunk.model_copy(
                            update={
                                "usage": Usage(
                                    input_tokens=prompt_tokens, output_tokens=completion_tokens
                                )
                            }
                        )
                    yield chunk.model_copy(update={"model": model})
                    timeouts.remaining()
            except ValueError as exc:
                raise self._translate(exc, model) from exc

    async def achat(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> ChatResponse:
        """`chat` in a worker thread."""
        return await asyncio.to_thread(self.chat, request, model, timeouts)

    async def astream(
        self, request: ChatRequest, model: str, timeouts: AttemptTimeouts
    ) -> AsyncGenerator[ChatChunk, None]:
        """`stream` driven from a worker thread, chunks handed to the loop through a queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            generator = self.stream(request, model, timeouts)
            try:
                for chunk in generator:
                    if cancelled.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            finally:
                generator.close()
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

        worker = loop.run_in_executor(None, produce)
        try:
            while True:
                kind, item = await queue.get()
                if kind == "chunk":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    break
        finally:
            cancelled.set()
            await asyncio.shield(worker)

    def _translate(self, exc: ValueError, model: str) -> ProviderError:
        text = str(exc)
        if "context window" in text or "exceed" in text:
            return CapabilityMismatch(
                f"huggingface: prompt does not fit {model}'s context: {text}",
                provider=self.provider.value,
                model=model,
            )
        return ProviderUnavailable(
            f"huggingface: generation failed: {text}", provider=self.provider.value, model=model
        )
