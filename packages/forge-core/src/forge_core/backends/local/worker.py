"""A local model in a worker process of forge's own (``isolation: process``).

A crash in native code (a segfault or abort inside llama.cpp, the kernel's OOM killer) ends the
worker, not the application: the attempt fails with `WorkerCrashed` naming the model and the
signal, the router falls back (after the first token: `StreamInterrupted` with the partial
text), and the next request starts a fresh worker. The worker runs the very engine code of
``isolation: thread`` (`forge_core.backends.local.engine`), so both answer alike.

The parent starts ``python -m forge_core.backends.local.worker FD`` with one end of a
``socketpair`` as ``FD`` and talks to it through `multiprocessing.connection.Connection`
(length-prefixed pickles: both ends are the same forge, and the socket belongs to these two
processes alone)::

    parent -> worker   ("load", resolved, config, purpose)    once, first
                       ("generate", request, model, timeouts)  one at a time (purpose "chat")
                       ("embed", texts, model)                 one at a time (purpose "embed")
                       ("cancel",)                             while generating
    worker -> parent   ("loaded", info) | ("failed", error)
                       ("chunk", chunk, tokens)* then ("done", tokens) | ("failed", error)
                       | ("cancelled", tokens)
                       per embed: ("vectors", vectors) | ("failed", error)

Closing the socket ends the worker. What the worker prints (llama.cpp writes to stderr) goes to
the ``forge.llama_cpp`` logger at DEBUG; its last lines are kept for the crash message.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from forge_core import errors
from forge_core.backends.base import AttemptTimeouts
from forge_core.backends.local.engine import (
    Purpose,
    embed_texts,
    generate,
    generation_for,
    make_instance,
)
from forge_core.config.local_models import ResolvedModel
from forge_core.config.sections import HuggingFaceConfig
from forge_core.errors import ForgeTimeout, ProviderError, WorkerCrashed
from forge_core.types import ChatChunk, ChatRequest, Message

__all__ = ["CrashRecord", "WorkerInstance", "crash_record", "runtime_check"]

logger = logging.getLogger("forge.llama_cpp")

#: Seconds a worker may take to stop generating after a cancel before it is killed.
_CANCEL_GRACE = 10.0
#: Seconds a closed worker may take to exit before it is killed.
_EXIT_GRACE = 5.0
#: Lines of the worker's stderr kept for the message of a crash.
_STDERR_TAIL = 8


@dataclass
class CrashRecord:
    """How a model's workers have fared: deaths in a row without one finished generation."""

    streak: int = 0
    last_signal: str | None = None
    last_message: str | None = None


_crashes: dict[tuple[Any, ...], CrashRecord] = {}
_crashes_lock = threading.Lock()


def crash_record(key: tuple[Any, ...]) -> CrashRecord:
    """The record for the model loaded with ``key`` (a copy; all zero when it never crashed)."""
    with _crashes_lock:
        record = _crashes.get(key, CrashRecord())
        return CrashRecord(record.streak, record.last_signal, record.last_message)


def _record_crash(key: tuple[Any, ...], exc: WorkerCrashed) -> None:
    with _crashes_lock:
        record = _crashes.setdefault(key, CrashRecord())
        record.streak += 1
        record.last_signal = exc.signal
        record.last_message = str(exc)


def _record_success(key: tuple[Any, ...]) -> None:
    with _crashes_lock:
        _crashes.pop(key, None)


def signal_name(returncode: int | None) -> str:
    """``SIGSEGV`` for a process killed by signal 11, ``exit code 3`` for ``exit(3)``."""
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


# -- the parent's side ----------------------------------------------------------------------------


class WorkerInstance:
    """One loaded model in a worker process; the pool lends it to one thread at a time.

    A worker that died is started afresh by the next `generation` (its load counts toward that
    request's deadline); ``crash_key`` names the model in the crash records (`crash_record`).
    """

    def __init__(
        self,
        resolved: ResolvedModel,
        config: HuggingFaceConfig,
        *,
        crash_key: tuple[Any, ...],
        load_timeout: float,
        purpose: Purpose = "chat",
    ) -> None:
        self.resolved = resolved
        self.purpose: Purpose = purpose
        self._config = config
        self._crash_key = crash_key
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._stderr_reader: threading.Thread | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self.load_seconds = 0.0
        self._start(load_timeout)

    def __repr__(self) -> str:
        return f"WorkerInstance(model={self.resolved.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        """The worker's process id, None when none is running."""
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self._process is not None and self._process.poll() is None

    def resident_bytes(self) -> int:
        """The worker's resident memory (0 when it is not running)."""
        import psutil

        try:
            return int(psutil.Process(self.pid).memory_info().rss) if self.alive() else 0
        except psutil.Error:
            return 0

    def generation(self, request: ChatRequest, model: str) -> _RemoteGeneration:
        """``request`` answered by the worker (a `Generation`, as in process)."""
        return _RemoteGeneration(self, request, model)

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self.close()

    def embed(self, texts: list[str], model: str, timeout: float) -> list[list[float]]:
        """Vectors of ``texts`` computed by the worker (an ``embed`` instance)."""
        self._ensure_started(timeout)
        self._send(("embed", texts, model), phase="embedding")
        message = self._receive(timeout, phase="embedding", model=model)
        if message[0] == "failed":
            raise _rebuilt(message[1])
        _record_success(self._crash_key)
        vectors: list[list[float]] = message[1]
        return vectors

    def close(self) -> None:
        """Stop the worker: close its socket, and kill it if it does not exit by itself; the
        thread reading its stderr ends with it (joined)."""
        conn, process, reader = self._conn, self._process, self._stderr_reader
        self._conn = self._process = self._stderr_reader = None
        if conn is not None:
            conn.close()
        if process is not None:
            try:
                process.wait(timeout=_EXIT_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if reader is not None and reader is not threading.current_thread():
            reader.join(_EXIT_GRACE)  # the worker is gone: its stderr is at its end

    # -- lifecycle ----------------------------------------------------------------------------

    def _start(self, timeout: float) -> None:
        parent_end, child_end = socket.socketpair()
        environment = dict(os.environ)
        # The worker imports this very forge, wherever the parent found it.
        package_root = str(Path(__file__).resolve().parents[3])
        environment["PYTHONPATH"] = os.pathsep.join(
            [package_root, *filter(None, [environment.get("PYTHONPATH")])]
        )
        started = time.perf_counter()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(child_end.fileno())],
                pass_fds=[child_end.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=environment,
            )
        finally:
            child_end.close()
        self._conn = Connection(parent_end.detach())
        self._stderr_tail.clear()
        self._stderr_reader = threading.Thread(
            target=_log_lines,
            args=(self._process.stderr, self._stderr_tail, self._process.pid),
            name=f"forge-worker-{self._process.pid}-stderr",
            daemon=True,
        )
        self._stderr_reader.start()
        logger.debug("forge: worker %d started for %s", self._process.pid, self.resolved.name)
        self._send(("load", self.resolved, self._config, self.purpose), phase="loading")
        try:
            message = self._receive(timeout, phase="loading", model=self.resolved.name)
        except ForgeTimeout:
            self._kill()
            raise
        if message[0] == "failed":
            self.close()
            raise _rebuilt(message[1])
        self.load_seconds = time.perf_counter() - started
        logger.debug("forge: worker %d loaded %s", self.pid, self.resolved.name)

    def _ensure_started(self, timeout: float) -> None:
        if self.alive() and self._conn is not None:
            return
        self.close()
        self._start(timeout)

    def _send(self, message: tuple[Any, ...], *, phase: str) -> None:
        assert self._conn is not None
        try:
            self._conn.send(message)
        except OSError as exc:
            raise self._crashed(phase, self.resolved.name) from exc

    def _receive(self, timeout: float, *, phase: str, model: str) -> tuple[Any, ...]:
        """The worker's next message; `WorkerCrashed` when it died, `ForgeTimeout` when late."""
        assert self._conn is not None
        try:
            if not self._conn.poll(max(timeout, 0.0)):
                raise ForgeTimeout(
                    f"huggingface: {model}: the worker gave nothing for {timeout:.1f}s "
                    f"while {phase}",
                    timeout_seconds=timeout,
                    phase="total",
                    provider="huggingface",
                    model=model,
                )
            message: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._crashed(phase, model) from exc
        return message

    def _crashed(self, phase: str, model: str) -> WorkerCrashed:
        """The error for a worker that died while ``phase``; it is reaped and recorded."""
        process = self._process
        returncode: int | None = None
        if process is not None:
            try:
                returncode = process.wait(timeout=_EXIT_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                returncode = process.wait()
        pid = process.pid if process is not None else None
        died = signal_name(returncode)
        last_words = next((line for line in reversed(self._stderr_tail) if line.strip()), "")
        self.close()
        hint = " (SIGKILL: killed from outside, the OOM killer among others)" * (died == "SIGKILL")
        message = (
            f"huggingface: {model}: the worker process (pid {pid}) died with {died}{hint} "
            f"while {phase}; the next request starts a fresh one"
        )
        if last_words:
            message += f". Its last output: {last_words.strip()[:300]}"
        error = WorkerCrashed(
            message, provider="huggingface", model=model, signal=died, returncode=returncode
        )
        _record_crash(self._crash_key, error)
        logger.warning("forge: %s", message)
        return error

    def _cancel(self, model: str) -> None:
        """Stop the generation in progress; a worker that does not stop in time is killed."""
        if not self.alive() or self._conn is None:
            return
        try:
            self._conn.send(("cancel",))
            deadline = time.monotonic() + _CANCEL_GRACE
            while True:
                message = self._receive(
                    deadline - time.monotonic(), phase="cancelling", model=model
                )
                if message[0] in ("done", "cancelled", "failed"):
                    return
        except (ProviderError, OSError):
            self.close()


class _RemoteGeneration:
    """One request answered by a worker: the chunks it sends, as a local `Generation`."""

    def __init__(self, worker: WorkerInstance, request: ChatRequest, model: str) -> None:
        self._worker = worker
        self._request = request
        self._model = model
        self.output_tokens = 0

    def chunks(self, timeouts: AttemptTimeouts) -> Iterator[ChatChunk]:
        worker = self._worker
        worker._ensure_started(timeouts.remaining())
        worker._send(("generate", self._request, self._model, timeouts), phase="generating")
        finished = False
        first = True
        try:
            while True:
                phase = "generating its first token" if first else "generating"
                message = worker._receive(timeouts.remaining(), phase=phase, model=self._model)
                if message[0] == "chunk":
                    first = False
                    self.output_tokens = message[2]
                    logger.debug("forge: worker %s sent a chunk", worker.pid)
                    yield message[1]
                    continue
                finished = True
                if message[0] == "failed":
                    raise _rebuilt(message[1])
                self.output_tokens = message[1]
                _record_success(worker._crash_key)
                return
        except WorkerCrashed:
            finished = True
            raise
        finally:
            if not finished:
                worker._cancel(self._model)


# -- the worker's side ----------------------------------------------------------------------------


def _describe(exc: BaseException) -> tuple[str, str]:
    """An error as ``(class name, message)``: forge's own errors keep their class."""
    if isinstance(exc, ProviderError):
        return type(exc).__name__, str(exc)
    return "ProviderUnavailable", f"huggingface: generation failed: {type(exc).__name__}: {exc}"


def _rebuilt(error: tuple[str, str]) -> ProviderError:
    name, message = error
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, ProviderError)) or cls is WorkerCrashed:
        cls = errors.ProviderUnavailable
    return cls(message, provider="huggingface")


def _serve(conn: Connection) -> None:
    kind, resolved, config, purpose = conn.recv()
    assert kind == "load"
    try:
        instance = make_instance(resolved, config, purpose)
    except BaseException as exc:
        conn.send(("failed", _describe(exc)))
        return
    conn.send(("loaded", {"pid": os.getpid()}))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "embed":
            _, texts, model = message
            try:
                conn.send(("vectors", embed_texts(instance, texts, model)))
            except Exception as exc:
                conn.send(("failed", _describe(exc)))
            continue
        if message[0] != "generate":
            continue  # a cancel that arrived after its generation ended
        _, request, model, timeouts = message
        try:
            _answer(
                conn, generation_for(instance, resolved.format, request, model), model, timeouts
            )
        except Exception as exc:
            conn.send(("failed", _describe(exc)))


def _answer(conn: Connection, generation: Any, model: str, timeouts: AttemptTimeouts) -> None:
    """Send ``generation``'s chunks until it ends or the parent cancels it."""
    chunks = generate(generation, timeouts, model)
    try:
        for chunk in chunks:
            conn.send(("chunk", chunk, generation.output_tokens))
            if conn.poll():
                conn.recv()  # the only message sent mid-generation is a cancel
                conn.send(("cancelled", generation.output_tokens))
                return
        conn.send(("done", generation.output_tokens))
    finally:
        chunks.close()


def _log_lines(stream: Any, tail: collections.deque[str], pid: int) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        if line:
            tail.append(line)
            logger.debug("worker %d: %s", pid, line)
    stream.close()


# -- the runtime check ------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeCheck:
    """Whether a model loaded and generated a token in a child process, and how long it took."""

    ok: bool
    seconds: float
    reason: str
    #: When it finished (``time.monotonic()``).
    checked_at: float = field(default_factory=time.monotonic)


def runtime_check(
    resolved: ResolvedModel,
    config: HuggingFaceConfig,
    *,
    crash_key: tuple[Any, ...],
    timeout: float,
) -> RuntimeCheck:
    """Load ``resolved`` in a throwaway worker and generate one token.

    A native build that crashes on this CPU fails here, with the signal, instead of in the
    first request (or, in process, taking the application down).
    """
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    request = ChatRequest(messages=[Message(role="user", content="Hi")], max_tokens=1)
    timeouts = AttemptTimeouts(connect=timeout, read=timeout, total_deadline=deadline)
    worker: WorkerInstance | None = None
    try:
        worker = WorkerInstance(resolved, config, crash_key=crash_key, load_timeout=timeout)
        for _ in worker.generation(request, resolved.name).chunks(timeouts):
            pass
    except ProviderError as exc:
        return RuntimeCheck(False, time.perf_counter() - started, str(exc))
    finally:
        if worker is not None:
            worker.close()
    seconds = time.perf_counter() - started
    return RuntimeCheck(
        True, seconds, f"loaded and generated a token in a child process in {seconds:.1f}s"
    )


def _main() -> None:
    conn = Connection(int(sys.argv[1]))
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError):
        _serve(conn)  # those: the parent went away


if __name__ == "__main__":
    _main()
