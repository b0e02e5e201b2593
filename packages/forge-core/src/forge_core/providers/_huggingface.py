"""The ``huggingface`` provider: local models run in this process.

GGUF files run in llama-cpp-python (the ``forge-core[llama]`` extra); ONNX model directories in
onnxruntime (``forge-core[onnx]``); both are imported on first use only.

Lifecycle: one `_LoadedModel` per model file and settings per process, shared by every backend
(so by ``ForgeChat``, ``ForgeLLM``, ``ForgeEmbedding`` and the CLI). It holds ``parallel``
instances (default one) in a queue: a request takes an instance, generates, and puts it back, so
an instance is never used by two threads at once and requests beyond ``parallel`` wait their
turn. A model idle for ``keep_alive_seconds`` is unloaded by a daemon timer. Async calls run on
a thread of their own (`forge_core._threads.in_thread`), never on the event loop nor the loop's
default executor (which the loop also needs for DNS lookups), so requests waiting for one busy
model never keep another model's requests from starting.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import queue
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core._config import HuggingFaceConfig
from forge_core._exceptions import (
    BadRequest,
    CapabilityMismatch,
    ForgeTimeout,
    MissingDependency,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
)
from forge_core._local_models import (
    EMBEDDED_MODEL,
    ResolvedModel,
    gpu_layers,
    llama_output_logged,
    resolve_local_model,
)
from forge_core._threads import in_thread
from forge_core._types import (
    Capabilities,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    RouteTrail,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from forge_core.providers._base import AttemptTimeouts
from forge_core.providers._openai_wire import message_to_wire

__all__ = ["HuggingFaceBackend", "LlamaCppBackend", "unload_models"]

_LLAMA_HINT = "pip install 'forge-core[llama]'"
_ONNX_HINT = "pip install 'forge-core[onnx]'"
#: A base model given no limit rambles until its context is full; cap answers by default.
DEFAULT_MAX_TOKENS = 512
#: Chat formats whose template has no system turn: the system text opens the first user turn.
_SYSTEMLESS_FORMATS = frozenset({"gemma"})
#: Chat format for a GGUF with no template of its own and none configured.
_FALLBACK_CHAT_FORMAT = "chatml"
_PROVIDER = Provider.HUGGINGFACE.value


# -- loaded models, shared by the whole process -------------------------------------------------


@dataclass
class _LoadedModel:
    """``parallel`` instances of one model, and what they have done."""

    name: str
    path: Path
    format: str
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
            "instances": len(self.instances),
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


_loaded: dict[tuple[Any, ...], _LoadedModel] = {}
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


def _unload_if_idle(key: tuple[Any, ...], loaded: _LoadedModel) -> None:
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


# -- the backend ----------------------------------------------------------------------------------


class HuggingFaceBackend:
    """Chat with local models in this process: GGUF via llama-cpp-python, ONNX via onnxruntime.

    Example:
        ```python
        backend = HuggingFaceBackend(HuggingFaceConfig(models=[{"name": "gemma-3-270m"}]))
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
        """The first configured model, else the embedded Gemma 3 270M."""
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
                    f"huggingface: running ONNX models needs {', '.join(missing)}: {_ONNX_HINT}",
                    provider=_PROVIDER,
                    model=model,
                )
        elif importlib.util.find_spec("llama_cpp") is None:
            raise MissingDependency(
                f"huggingface: running GGUF models needs llama-cpp-python: {_LLAMA_HINT}",
                provider=_PROVIDER,
                model=model,
            )

    def capabilities(self, model: str) -> Capabilities:
        """GGUF: grammar-constrained JSON and tool calls; ONNX: plain text. Both stream."""
        try:
            onnx = resolve_local_model(model, self._config).format == "onnx"
        except ProviderError:
            onnx = False
        if onnx:
            return Capabilities(streaming=True, context_window=None)
        return Capabilities(
            tools=True,
            tool_choice=True,
            structured_output=True,
            json_mode=True,
            streaming=True,
            context_window=self._config.n_ctx,
        )

    def warm(self, models: list[str] | None = None) -> list[str]:
        """Load ``models`` (default: every configured one, else the embedded model) now."""
        names = models or [entry.name for entry in self._config.models] or [EMBEDDED_MODEL]
        for name in names:
            key, loaded = self._checkout(name)
            self._checkin(key, loaded)
        return names

    def stats(self) -> dict[str, Any]:
        """Loaded models (load time, resident memory, tokens/s, queue wait) and process RSS."""
        import psutil

        with _loaded_lock:
            models = [loaded.stats() for loaded in _loaded.values()]
        return {"process_rss_bytes": psutil.Process().memory_info().rss, "models": models}

    # -- loading ----------------------------------------------------------------------------

    def _key(self, resolved: ResolvedModel) -> tuple[Any, ...]:
        return (
            str(resolved.path),
            resolved.format,
            self._config.n_ctx,
            gpu_layers(self._config.device) if resolved.format == "gguf" else 0,
            resolved.chat_format,
            self._config.parallel,
            self._config.n_threads,
        )

    def _checkout(self, model: str) -> tuple[tuple[Any, ...], _LoadedModel]:
        """The loaded model, loading it if needed, counted as in use until `_checkin`."""
        resolved = resolve_local_model(model, self._config)
        key = self._key(resolved)
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
            loaded = self._load(resolved)
            with _loaded_lock:
                loaded.users += 1
                _loaded[key] = loaded
            return key, loaded

    def _checkin(self, key: tuple[Any, ...], loaded: _LoadedModel) -> None:
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
    def _instance(
        self, model: str, timeouts: AttemptTimeouts, queued_at: float | None
    ) -> Iterator[tuple[_LoadedModel, Any, float]]:
        """An instance of ``model`` for this thread alone, and the seconds waited for it.

        The wait runs from ``queued_at`` (when an async call was handed to the local threads;
        None: now) to holding an instance, less the time spent loading the model for it.
        """
        before_checkout = time.perf_counter()
        queued_at = before_checkout if queued_at is None else queued_at
        key, loaded = self._checkout(model)
        loading = min(time.perf_counter() - before_checkout, loaded.load_seconds)
        try:
            try:
                instance = loaded.idle.get(timeout=timeouts.remaining())
            except queue.Empty:
                raise ForgeTimeout(
                    f"huggingface: {model} stayed busy until the deadline",
                    provider=_PROVIDER,
                    model=model,
                ) from None
            waited = max(time.perf_counter() - queued_at - loading, 0.0)
            try:
                yield loaded, instance, waited
            finally:
                loaded.idle.put(instance)
        finally:
            self._checkin(key, loaded)

    def _load(self, resolved: ResolvedModel) -> _LoadedModel:
        import psutil

        process = psutil.Process()
        rss_before = process.memory_info().rss
        started = time.perf_counter()
        make = self._onnx_instance if resolved.format == "onnx" else self._gguf_instance
        instances = [make(resolved) for _ in range(self._config.parallel)]
        return _LoadedModel(
            name=resolved.name,
            path=resolved.path,
            format=resolved.format,
            keep_alive=self._config.keep_alive_seconds,
            instances=instances,
            load_seconds=time.perf_counter() - started,
            resident_bytes=max(process.memory_info().rss - rss_before, 0),
        )

    def _gguf_instance(self, resolved: ResolvedModel) -> Any:
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingDependency(
                f"huggingface: running GGUF models needs llama-cpp-python: {_LLAMA_HINT}",
                provider=_PROVIDER,
                model=resolved.name,
            ) from exc
        try:
            with llama_output_logged():
                llama = llama_cpp.Llama(
                    model_path=str(resolved.path),
                    # None lets llama-cpp-python use the GGUF's own template; see _chat_format.
                    chat_format=resolved.chat_format,
                    n_ctx=self._config.n_ctx,
                    n_threads=self._config.n_threads,
                    n_gpu_layers=gpu_layers(self._config.device),
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelNotFound(
                f"huggingface: cannot load {resolved.path}: {exc}",
                provider=_PROVIDER,
                model=resolved.name,
            ) from exc
        llama.chat_format = chat_format_for(llama.metadata, resolved.chat_format)
        return llama

    def _onnx_instance(self, resolved: ResolvedModel) -> Any:
        try:
            from forge_core.providers._onnx import OnnxCausalLM
        except ImportError as exc:
            raise MissingDependency(
                f"huggingface: running ONNX models needs onnxruntime: {_ONNX_HINT}",
                provider=_PROVIDER,
                model=resolved.name,
            ) from exc
        try:
            return OnnxCausalLM(resolved.path, n_threads=self._config.n_threads)
        except Exception as exc:
            raise ModelNotFound(
                f"huggingface: cannot load the ONNX model in {resolved.path}: {exc}",
                provider=_PROVIDER,
                model=resolved.name,
            ) from exc

    # -- generation -------------------------------------------------------------------------

    def chat(self, request: ChatRequest, model: str, timeouts: AttemptTimeouts) -> ChatResponse:
        """One complete answer, generated in this thread."""
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
        with self._instance(model, timeouts, queued_at) as (loaded, instance, waited):
            timeouts.remaining()
            started = time.perf_counter()
            pieces: _OnnxGeneration | _GgufGeneration | None = None
            try:
                if loaded.format == "onnx":
                    pieces = _OnnxGeneration(instance, request, model)
                else:
                    pieces = _GgufGeneration(instance, request, model)
                yield from pieces.chunks(timeouts)
            except ValueError as exc:
                raise _translate(exc, model) from exc
            finally:
                if pieces is not None:
                    loaded.record(
                        waited=waited,
                        tokens=pieces.output_tokens,
                        seconds=time.perf_counter() - started,
                    )

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


#: The repetition penalty of in-process GGUF generation: the default of llama-cpp-python's
#: OpenAI-compatible server and of Ollama, so a model answers the same in process as behind
#: those servers. (``Llama.create_chat_completion`` defaults to 1.0, with which small models
#: repeat themselves in loops; its chat handlers default to 1.1.)
REPEAT_PENALTY = 1.1


#: The name this backend had when it ran GGUF files only.
LlamaCppBackend = HuggingFaceBackend


def chat_format_for(metadata: dict[str, str], configured: str | None) -> str:
    """The llama-cpp-python chat format to use for a GGUF with ``metadata``.

    A format named in config wins (the user asked for it); then the GGUF's own
    ``tokenizer.chat_template`` (llama-cpp-python registers it as ``chat_template.default``);
    then ChatML.
    """
    if configured:
        return configured
    if "tokenizer.chat_template" in metadata:
        return "chat_template.default"
    return _FALLBACK_CHAT_FORMAT


def _translate(exc: ValueError, model: str) -> ProviderError:
    text = str(exc)
    if "context window" in text or "exceed" in text:
        return CapabilityMismatch(
            f"huggingface: prompt does not fit {model}'s context: {text}",
            provider=_PROVIDER,
            model=model,
        )
    return ProviderUnavailable(
        f"huggingface: generation failed: {text}", provider=_PROVIDER, model=model
    )


def _context_check(prompt_tokens: int, request: ChatRequest, n_ctx: int, model: str) -> int:
    """The ``max_tokens`` to generate with; `CapabilityMismatch` when the prompt does not fit."""
    wanted = request.max_tokens
    room = n_ctx - prompt_tokens
    if (wanted is not None and wanted > room) or room < 1:
        raise CapabilityMismatch(
            f"huggingface: {model}: the prompt is {prompt_tokens} tokens and "
            f"{wanted or 1} more were asked for, but the context holds {n_ctx} "
            f"(n_ctx); refused before generation",
            provider=_PROVIDER,
            model=model,
        )
    return wanted if wanted is not None else min(DEFAULT_MAX_TOKENS, room)


# -- GGUF generation ------------------------------------------------------------------------------


class _Captured(Exception):
    """Raised by `_PromptCapture` to stop a chat handler once it has built the prompt."""


class _PromptCapture:
    """Stands in for a ``Llama`` in a chat call, recording the completion it asks for.

    llama-cpp-python's chat handlers format the messages, tokenise the prompt and then call
    ``create_completion``; catching that call gives the exact prompt tokens, stop strings and
    grammar, so the context can be checked before anything is generated.
    """

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self.kwargs: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        raise _Captured


class _GgufGeneration:
    """One request on one ``Llama``: prompt, context check, grammar, and the chunks out."""

    def __init__(self, llama: Any, request: ChatRequest, model: str) -> None:
        self.llama = llama
        self.request = request
        self.model = model
        self.output_tokens = 0
        self.tools = _ToolPlan.of(request, model)

    def _completion_kwargs(self) -> dict[str, Any]:
        llama = self.llama
        request = self.request
        arguments: dict[str, Any] = {
            "messages": _wire_messages(request, llama.chat_format, self.tools),
            "stream": True,
            "max_tokens": request.max_tokens,
            "stop": list(request.stop or []),
            "repeat_penalty": REPEAT_PENALTY,
        }
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if self.tools.grammar is not None:
            arguments["grammar"] = _llama_grammar(self.tools.grammar)
        elif request.response_format:
            arguments["response_format"] = _response_format(request.response_format)
        capture = _PromptCapture(llama)
        problem = "its handler generated without a single prompt"
        try:
            # Through `create_chat_completion` itself, so every sampling setting forge does not
            # set has llama-cpp-python's default for a chat call, as a direct caller gets it.
            type(llama).create_chat_completion(capture, **arguments)
        except _Captured:
            pass
        except Exception as exc:  # a handler's own checks: assertions, missing tokenizers …
            problem = f"{type(exc).__name__}: {exc}"
        if capture.kwargs is None:
            raise CapabilityMismatch(
                f"huggingface: {self.model}: chat format {llama.chat_format!r} cannot be used "
                f"in process ({problem})",
                provider=_PROVIDER,
                model=self.model,
            )
        return capture.kwargs

    def chunks(self, timeouts: AttemptTimeouts) -> Iterator[ChatChunk]:
        kwargs = self._completion_kwargs()
        prompt_tokens = len(kwargs["prompt"])
        kwargs["max_tokens"] = _context_check(
            prompt_tokens, self.request, self.llama.n_ctx(), self.model
        )
        finish_reason: str | None = None
        text: list[str] = []
        # "text" streams as it comes; "call" holds a tool call until it is whole. With
        # tool_choice auto the answer starts unconstrained (grammar sampling over a large
        # vocabulary is slow) and is "undecided" until its first visible character: "{" stops
        # it, and the call is generated anew under the tool-call grammar (the prompt is cached).
        mode = "text" if self.tools.grammar is None else "call"
        if self.tools.may_answer_in_text:
            mode = "undecided"
            pieces = self._pieces({**kwargs, "grammar": None}, timeouts)
            try:
                for piece, reason in pieces:
                    finish_reason = reason or finish_reason
                    if mode == "undecided":
                        text.append(piece)
                        opening = "".join(text).lstrip()
                        if not opening:
                            continue
                        mode = "call" if opening.startswith("{") else "text"
                        if mode == "call":
                            break
                        piece = "".join(text)
                    if piece:
                        yield _chunk(self.model, content=piece)
            finally:
                pieces.close()
            mode = "text" if mode == "undecided" else mode
            text = []
        elif mode == "text":
            for piece, reason in self._pieces(kwargs, timeouts):
                finish_reason = reason or finish_reason
                if piece:
                    yield _chunk(self.model, content=piece)
        if mode == "call":
            for piece, reason in self._pieces(kwargs, timeouts):
                finish_reason = reason or finish_reason
                text.append(piece)
        usage = Usage(input_tokens=prompt_tokens, output_tokens=self.output_tokens)
        if mode == "call":
            calls = self.tools.parse("".join(text), finish_reason, self.model)
            yield _chunk(
                self.model,
                deltas=[
                    ToolCallDelta(
                        index=index,
                        id=call.id,
                        name=call.name,
                        arguments=json.dumps(call.arguments),
                    )
                    for index, call in enumerate(calls)
                ],
                finish_reason="tool_calls",
                usage=usage,
            )
        else:
            yield _chunk(self.model, finish_reason=finish_reason or "stop", usage=usage)

    def _pieces(
        self, kwargs: dict[str, Any], timeouts: AttemptTimeouts
    ) -> Generator[tuple[str, str | None], None, None]:
        """``(text, finish_reason)`` per streamed completion chunk, counting tokens."""
        for data in self.llama.create_completion(**kwargs):
            choice = data["choices"][0]
            piece = choice.get("text") or ""
            if piece:
                self.output_tokens += 1
            yield piece, choice.get("finish_reason")
            timeouts.remaining()


@dataclass(frozen=True)
class _ToolPlan:
    """How a request's tools constrain the answer.

    ``forced`` names the one tool whose arguments are the whole answer (``tool_choice`` naming a
    function); otherwise the answer is ``{"name": ..., "arguments": {...}}`` for one of the
    tools, or (``auto``) free text that does not start with ``{``.
    """

    grammar: str | None
    forced: str | None
    may_answer_in_text: bool
    instructions: str | None

    @classmethod
    def none(cls) -> _ToolPlan:
        return cls(None, None, False, None)

    @classmethod
    def of(cls, request: ChatRequest, model: str) -> _ToolPlan:
        tools = [tool["function"] for tool in request.tools or [] if tool.get("function")]
        choice = request.tool_choice
        if not tools or choice == "none":
            return cls.none()
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            tool = next((tool for tool in tools if tool.get("name") == name), None)
            if tool is None:
                raise BadRequest(
                    f"huggingface: tool_choice names {name!r}, which is not among the tools",
                    provider=_PROVIDER,
                    model=model,
                )
            schema = tool.get("parameters") or {"type": "object"}
            return cls(
                json_schema_to_gbnf(json.dumps(schema)),
                name,
                False,
                _describe_tools([tool])
                + f"\nCall {name} now: answer with its arguments as one JSON object.",
            )
        call_schema = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": tool["name"]},
                        "arguments": tool.get("parameters") or {"type": "object"},
                    },
                    "required": ["name", "arguments"],
                }
                for tool in tools
            ]
        }
        grammar = json_schema_to_gbnf(json.dumps(call_schema))
        if choice == "required":
            ask = 'Answer only with JSON: {"name": <tool name>, "arguments": {...}}.'
            return cls(grammar, None, False, _describe_tools(tools) + "\n" + ask)
        ask = (
            'To call a tool, answer only with JSON: {"name": <tool name>, "arguments": {...}}. '
            "Otherwise answer in plain text."
        )
        return cls(grammar, None, True, _describe_tools(tools) + "\n" + ask)

    def parse(self, text: str, finish_reason: str | None, model: str) -> list[ToolCall]:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            reason = "it was cut off by max_tokens" if finish_reason == "length" else "bad JSON"
            raise BadRequest(
                f"huggingface: {model}: the tool call is incomplete ({reason}); "
                "allow more max_tokens",
                provider=_PROVIDER,
                model=model,
            ) from None
        call_id = "call_" + uuid.uuid4().hex[:24]
        if self.forced is not None:
            return [ToolCall(id=call_id, name=self.forced, arguments=data)]
        return [ToolCall(id=call_id, name=data["name"], arguments=data.get("arguments") or {})]


def _describe_tools(tools: list[dict[str, Any]]) -> str:
    lines = ["You can call these tools:"]
    for tool in tools:
        parameters = json.dumps(tool.get("parameters") or {})
        lines.append(f"- {tool['name']}: {tool.get('description', '')} Arguments: {parameters}")
    return "\n".join(lines)


def _wire_messages(request: ChatRequest, chat_format: str | None, tools: _ToolPlan) -> list[Any]:
    """The conversation as chat-handler messages, with tool turns spelt out as text.

    Generic chat templates have no tool turns: a tool call becomes the assistant's JSON, a
    tool result a user turn naming the tool. Templates with no system turn get the system text
    (and the tool instructions) at the head of the first user turn.
    """
    names = {call.id: call.name for message in request.messages for call in message.tool_calls}
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            system.append(message.content or "")
        elif message.role == "tool":
            name = names.get(message.tool_call_id or "", message.name or "the tool")
            out.append({"role": "user", "content": f"Result of {name}: {message.content or ''}"})
        elif message.role == "assistant" and message.tool_calls:
            calls = [
                {"name": call.name, "arguments": call.arguments} for call in message.tool_calls
            ]
            out.append(
                {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
            )
        else:
            wire = message_to_wire(Message(role=message.role, content=message.content or ""))
            out.append(wire)
    if tools.instructions:
        system.append(tools.instructions)
    if system:
        text = "\n\n".join(part for part in system if part)
        if chat_format in _SYSTEMLESS_FORMATS:
            first_user = next((m for m in out if m["role"] == "user"), None)
            if first_user is None:
                out.insert(0, {"role": "user", "content": text})
            else:
                first_user["content"] = f"{text}\n\n{first_user['content']}"
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def _llama_grammar(gbnf: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)


def _response_format(response_format: dict[str, Any]) -> dict[str, Any]:
    # llama-cpp-python constrains output with a grammar built from a schema given as
    # {"type": "json_object", "schema": ...}; it has no "json_schema" type.
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema}
    return response_format


def _chunk(
    model: str,
    *,
    content: str = "",
    deltas: list[ToolCallDelta] | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> ChatChunk:
    return ChatChunk(
        content=content,
        tool_call_deltas=deltas or [],
        finish_reason=finish_reason,
        usage=usage,
        provider=Provider.HUGGINGFACE,
        model=model,
    )


# -- ONNX generation ------------------------------------------------------------------------------


class _OnnxGeneration:
    """One request on one `OnnxCausalLM`: text in, text out (no tools, no grammar)."""

    def __init__(self, engine: Any, request: ChatRequest, model: str) -> None:
        if request.tools or request.response_format:
            raise CapabilityMismatch(
                f"huggingface: {model} is an ONNX model: no tool calls or constrained JSON",
                provider=_PROVIDER,
                model=model,
            )
        self.engine = engine
        self.request = request
        self.model = model
        self.output_tokens = 0

    def chunks(self, timeouts: AttemptTimeouts) -> Iterator[ChatChunk]:
        from forge_core.providers._onnx import render_chat

        messages = [message_to_wire(message) for message in self.request.messages]
        prompt = self.engine.tokenize(render_chat(messages, self.engine.chat_template))
        window = self.engine.context_window
        max_tokens = (
            _context_check(len(prompt), self.request, window, self.model)
            if window
            else self.request.max_tokens or DEFAULT_MAX_TOKENS
        )
        finish_reason = "stop"
        pieces = self.engine.generate(
            prompt,
            max_tokens=max_tokens,
            temperature=self.request.temperature,
            stop=self.request.stop or (),
        )
        for piece, _token in pieces:
            self.output_tokens += 1
            if piece:
                yield _chunk(self.model, content=piece)
            timeouts.remaining()
        if self.output_tokens >= max_tokens:
            finish_reason = "length"
        usage = Usage(input_tokens=len(prompt), output_tokens=self.output_tokens)
        yield _chunk(self.model, finish_reason=finish_reason, usage=usage)
