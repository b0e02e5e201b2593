"""`ClientPool` and event loops: each loop's async clients close when the loop ends, however it
ends, and `close` reaches every loop's, whatever state the loop is in (issue #30).

Real sockets to an in-process fault server, counted by the kernel (`held_resources`).
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest
from fault_server import FaultServer
from forge_core.backends.http.pool import ClientPool
from held_resources import Held, client_sockets, closed_loops_alive

#: Loops run in a test: enough that a per-loop leak shows, bounded so the test stays quick.
LOOPS = 60


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


async def _listed(pool: ClientPool, server: FaultServer) -> int:
    response = await pool.async_client(server.base_url).get("models")
    return response.status_code


def _in_a_loop_closed_by_hand(pool: ClientPool, server: FaultServer) -> int:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_listed(pool, server))
    finally:
        loop.close()  # no shutdown_asyncgens: nothing tells the pool the loop ended


def test_each_asyncio_run_closes_its_loops_clients_as_it_ends(server: FaultServer) -> None:
    pool = ClientPool()
    assert asyncio.run(_listed(pool, server)) == 200
    before, loops = Held.now(server.port), closed_loops_alive()
    for _ in range(LOOPS):
        assert asyncio.run(_listed(pool, server)) == 200
        assert client_sockets(server.port) == 0
        assert pool.loop_count() == 0
    # Other tests' objects may be collected meanwhile (fewer), never anything more.
    after = Held.now(server.port)
    assert after.fds <= before.fds
    assert set(after.threads) <= set(before.threads)
    assert set(after.children) <= set(before.children)
    assert closed_loops_alive() <= loops


def test_a_loop_closed_by_hand_is_freed_by_the_next_loop_and_by_close(
    server: FaultServer,
) -> None:
    pool = ClientPool()
    loops = closed_loops_alive()
    for _ in range(LOOPS // 3):
        assert _in_a_loop_closed_by_hand(pool, server) == 200
        assert client_sockets(server.port) == 1  # the last loop's, until the next one
        assert pool.loop_count() == 1
    pool.close()
    assert client_sockets(server.port) == 0
    assert pool.loop_count() == 0
    assert closed_loops_alive() == loops


def test_close_reaches_a_loop_running_in_another_thread(server: FaultServer) -> None:
    pool = ClientPool()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        assert asyncio.run_coroutine_threadsafe(_listed(pool, server), loop).result(10) == 200
        assert client_sockets(server.port) == 1
        pool.close()
        assert client_sockets(server.port) == 0
        # The loop goes on, and the pool serves it afresh.
        assert asyncio.run_coroutine_threadsafe(_listed(pool, server), loop).result(10) == 200
    finally:
        pool.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    assert client_sockets(server.port) == 0


def test_close_runs_a_stopped_loop_just_long_enough_to_close_its_clients(
    server: FaultServer,
) -> None:
    pool = ClientPool()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_listed(pool, server)) == 200
        pool.close()
        assert client_sockets(server.port) == 0
        assert not loop.is_running()
    finally:
        loop.close()


async def test_aclose_closes_the_running_loops_clients_at_once(server: FaultServer) -> None:
    pool = ClientPool()
    assert await _listed(pool, server) == 200
    await pool.aclose()
    assert client_sockets(server.port) == 0


async def test_close_from_a_coroutine_closes_them_at_the_loops_next_turn(
    server: FaultServer,
) -> None:
    pool = ClientPool()
    assert await _listed(pool, server) == 200
    pool.close()
    for _ in range(5):  # the closing task's turns: aclose, then the transport's close
        await asyncio.sleep(0)
    assert client_sockets(server.port) == 0


def test_a_pool_garbage_collected_unclosed_closes_every_client(server: FaultServer) -> None:
    pool = ClientPool()
    assert pool.sync_client(server.base_url).get("models").status_code == 200
    assert _in_a_loop_closed_by_hand(pool, server) == 200
    assert client_sockets(server.port) == 2
    del pool
    gc.collect()
    assert client_sockets(server.port) == 0
