"""A Redis state store is closed by the last `Forge` of the process using it (issue #30):
its load-publishing and reconnect threads end, its connections close (counted as threads of
this process and sockets to the redis-server's port)."""

from __future__ import annotations

import threading
import time

import pytest
from fault_server import FaultServer, ok, ollama_hosts_on
from forge_core import Forge, ForgeConfig
from held_resources import client_sockets
from redis_server import RedisServer, run_redis

pytestmark = pytest.mark.redis_server


def _state_threads(*, besides: frozenset[threading.Thread] = frozenset()) -> list[str]:
    """The names of the state stores' threads running now, less those in ``besides`` (other
    tests' stores may still run theirs)."""
    return sorted(
        thread.name
        for thread in set(threading.enumerate()) - besides
        if thread.name.startswith("forge-state-")
    )


def _threads_now() -> frozenset[threading.Thread]:
    return frozenset(threading.enumerate())


def _forge(redis: RedisServer, prefix: str, *hosts: FaultServer) -> Forge:
    state = {"backend": "redis", "url": redis.url, "key_prefix": prefix}
    return Forge(ForgeConfig.model_validate(ollama_hosts_on(*hosts, state=state)), env={})


def test_the_last_forge_closed_on_a_store_ends_its_threads_and_connections(
    redis_server: RedisServer,
) -> None:
    with (
        FaultServer(default=ok("a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("b"), loaded=["m"]) as host_b,
    ):
        # Other tests' stores on this redis-server keep theirs: counted apart.
        threads, sockets = _threads_now(), client_sockets(redis_server.port)
        first = _forge(redis_server, "close-last", host_a, host_b)
        second = _forge(redis_server, "close-last", host_a, host_b)
        assert first.router.shared is second.router.shared  # one store for the process
        first.chat("hi")
        second.chat("hi")
        assert _state_threads(besides=threads) == ["forge-state-load"]
        assert client_sockets(redis_server.port) > sockets
        first.close()
        # The other Forge still uses the store: nothing of it stopped.
        assert _state_threads(besides=threads) == ["forge-state-load"]
        assert second.chat("hi").content in ("a", "b")
        second.close()
    assert _state_threads(besides=threads) == []
    assert client_sockets(redis_server.port) == sockets


def test_the_reconnect_thread_ends_when_the_store_closes() -> None:
    with (
        run_redis() as redis,
        FaultServer(default=ok("a"), loaded=["m"]) as host_a,
        FaultServer(default=ok("b"), loaded=["m"]) as host_b,
    ):
        threads = _threads_now()
        forge = _forge(redis, "close-reconnect", host_a, host_b)
        forge.chat("hi")
        redis.kill()
        shared = forge.router.shared
        assert shared is not None
        # Requests route on their own once the store finds Redis gone (its view of the state
        # may be fresh for a moment longer): bounded, by requests, until it does.
        deadline = time.monotonic() + 10.0
        while shared.available() and time.monotonic() < deadline:
            forge.chat("hi")
        assert not shared.available()
        assert "forge-state-reconnect" in _state_threads(besides=threads)
        mine = [
            thread
            for thread in set(threading.enumerate()) - threads
            if thread.name.startswith("forge-state-")
        ]
        forge.close()
        # This store's threads are gone (other tests' stores may start theirs meanwhile).
        assert [thread.name for thread in mine if thread.is_alive()] == []
